"""Write a PEFT LoRA adapter alone as a GGUF LoRA adapter for llama.cpp (``--lora``).

Owns the adapter-only export: a small file that llama.cpp applies on top of a GGUF of the
*base* model at load time (``llama-cli -m base.gguf --lora twin-lora-F16.gguf``,
``llama_cpp.Llama(model_path=base, lora_path=...)``, Ollama's ``ADAPTER``), instead of a
merged copy of the whole model. The layout is the one llama.cpp's ``convert_lora_to_gguf.py``
writes and ``llama_adapter_lora_init`` reads:

- ``general.type = "adapter"``, ``adapter.type = "lora"``, ``general.architecture`` as in the
  base GGUF (llama.cpp refuses an adapter of another architecture);
- ``adapter.lora.alpha``: llama.cpp scales each pair by ``alpha / rank`` (rank read from the
  tensor), as PEFT does with ``lora_alpha / r``;
- for every adapted weight ``<gguf name>.lora_a`` (rank x in) and ``<gguf name>.lora_b``
  (out x rank), named after the base tensor (``blk.0.attn_q.weight.lora_a``);
- llama's Q/K rows are permuted for interleaved RoPE in the base GGUF (``export.gguf_writer``);
  since ``W + B @ A`` must be permuted the same way and a row permutation of ``B @ A`` is the
  same permutation of ``B``'s rows, it is applied to ``lora_b`` of q_proj / k_proj.

Scalings llama.cpp cannot express with one alpha (rsLoRA's ``alpha / sqrt(r)``, per-module
``rank_pattern`` / ``alpha_pattern``) are folded into ``lora_b`` and ``alpha`` is written as 0,
which llama.cpp reads as "scale 1". Adapters that change more than low-rank products of
linear weights (DoRA, LoRA biases, trained embeddings or ``modules_to_save``) raise
``UnsupportedModelError``: export the merged model for those.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import ExportError, UnsupportedModelError
from export.gguf_writer import _ARCHS, SUPPORTED_MODEL_TYPES, _permute_for_llama_rope, read_config, save_gguf

log = logging.getLogger(__name__)

LORA_OUTTYPES = ("F32", "F16", "BF16")

_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


def lora_gguf_name(outtype: str = "F16") -> str:
    return f"twin-lora-{outtype.upper()}.gguf"


def _adapter_tensors(adapter_dir: Path) -> dict[str, np.ndarray]:
    import torch

    path = adapter_dir / "adapter_model.safetensors"
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k).to(torch.float32).numpy() for k in f.keys()}
    path = adapter_dir / "adapter_model.bin"
    if path.is_file():
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        return {k: v.to(torch.float32).numpy() for k, v in state.items()}
    raise ExportError(f"no adapter weights (adapter_model.safetensors or .bin) in {adapter_dir}")


def _pattern_value(pattern: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches the end of the module name."""
    for key, value in (pattern or {}).items():
        if module == key or module.endswith("." + key) or re.fullmatch(key, module):
            return value
    return default


def _check_config(cfg: dict[str, Any], adapter_dir: Path) -> None:
    peft_type = str(cfg.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise UnsupportedModelError(f"the adapter in {adapter_dir} is {peft_type}, not LoRA")
    if cfg.get("use_dora"):
        raise UnsupportedModelError("DoRA adapters cannot be applied by llama.cpp; export the merged model")
    if cfg.get("lora_bias") or cfg.get("bias", "none") not in ("none", None):
        raise UnsupportedModelError("adapters with trained biases cannot be applied by llama.cpp; "
                                    "export the merged model")
    if cfg.get("modules_to_save"):
        raise UnsupportedModelError(f"the adapter also trains whole modules ({', '.join(cfg['modules_to_save'])}); "
                                    "llama.cpp applies only LoRA pairs: export the merged model")


def write_lora_gguf(adapter_dir: Path | str, base_dir: Path | str, out_path: Path | str,
                    outtype: str = "F16", *, name: str | None = None) -> Path:
    """Write the PEFT LoRA adapter in ``adapter_dir`` as a llama.cpp GGUF adapter.

    ``base_dir`` is a Hugging Face directory with the base model's ``config.json`` (the
    merged model's works too: it has the same architecture and shapes); only the config is
    read. ``outtype`` is F32, F16 or BF16. Written through a temporary file. Returns ``out_path``.
    """
    import gguf

    adapter_dir, base_dir, out_path = Path(adapter_dir), Path(base_dir), Path(out_path)
    kind = outtype.upper()
    if kind not in LORA_OUTTYPES:
        raise ValueError(f"a LoRA GGUF is written as {', '.join(LORA_OUTTYPES)}, not {outtype!r}")
    qtype = getattr(gguf.GGMLQuantizationType, kind)
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.is_file():
        raise ExportError(f"no PEFT adapter in {adapter_dir} (adapter_config.json is missing)")
    lcfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    _check_config(lcfg, adapter_dir)

    config = read_config(base_dir)
    model_type = config.get("model_type")
    arch = _ARCHS.get(model_type)
    if arch is None:
        raise UnsupportedModelError(f"unsupported architecture {model_type!r}; "
                                    f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}")
    n_layer = int(config["num_hidden_layers"])
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    tied = bool(config.get("tie_word_embeddings", False))
    model_arch = getattr(gguf.MODEL_ARCH, arch.gguf_arch)
    tensor_map = gguf.get_tensor_name_map(model_arch, n_layer)

    # pair up lora_A / lora_B per adapted module
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, data in _adapter_tensors(adapter_dir).items():
        if "lora_embedding_" in key or key.endswith(("embed_tokens.weight", "lm_head.weight")):
            raise UnsupportedModelError("the adapter trains the token embeddings or the output layer "
                                        f"({key}); llama.cpp cannot apply that: export the merged model")
        m = _LORA_KEY.match(key)
        if m is None:
            raise UnsupportedModelError(f"unexpected tensor {key!r} in the adapter (not a LoRA A/B matrix)")
        pairs.setdefault(m["module"], {})[m["ab"]] = data
    if not pairs:
        raise ExportError(f"the adapter in {adapter_dir} has no LoRA weights")

    r_default = int(lcfg.get("r", 8))
    alpha_default = float(lcfg.get("lora_alpha", r_default))
    rslora = bool(lcfg.get("use_rslora"))

    def scaling(module: str) -> tuple[int, float]:
        rank = int(_pattern_value(lcfg.get("rank_pattern"), module, r_default))
        alpha = float(_pattern_value(lcfg.get("alpha_pattern"), module, alpha_default))
        return rank, alpha / (math.sqrt(rank) if rslora else rank)

    # One alpha for all, if every module's PEFT scale is alpha / its rank; else fold the scales.
    scales = {module: scaling(module) for module in pairs}
    alphas = {round(s * rank, 6) for rank, s in scales.values()}
    fold = rslora or len(alphas) > 1
    gguf_alpha = 0.0 if fold else alphas.pop()

    writer = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[model_arch])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, gguf_alpha)
    writer.add_name(name or f"{adapter_dir.name} (LoRA)")
    writer.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                          "BF16": gguf.LlamaFileType.MOSTLY_BF16}[kind])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    for module in sorted(pairs, key=_natural_key):
        ab = pairs[module]
        if set(ab) != {"A", "B"}:
            raise ExportError(f"the adapter has lora_{''.join(ab)} but not both matrices for {module}")
        lora_a, lora_b = ab["A"], ab["B"]
        if lora_a.ndim != 2 or lora_b.ndim != 2 or lora_a.shape[0] != lora_b.shape[1]:
            raise ExportError(f"LoRA matrices of {module} have shapes {lora_a.shape} and {lora_b.shape}")
        hf_name = module + ".weight"
        if hf_name == "lm_head.weight" and tied:
            raise UnsupportedModelError("the adapter changes lm_head, which the base shares with the "
                                        "embeddings; llama.cpp cannot apply that: export the merged model")
        gguf_name = tensor_map.get_name(hf_name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise UnsupportedModelError(f"adapted module {module!r} has no GGUF equivalent for {model_type}")
        if fold:
            lora_b = lora_b * np.float32(scales[module][1])
        if arch.permute_qk:
            if module.endswith("q_proj"):
                lora_b = _permute_for_llama_rope(lora_b, n_head)
            elif module.endswith("k_proj"):
                lora_b = _permute_for_llama_rope(lora_b, n_head_kv)
        for suffix, data in (("lora_a", lora_a), ("lora_b", lora_b)):
            data = np.ascontiguousarray(data, dtype=np.float32)
            writer.add_tensor(f"{gguf_name}.{suffix}", gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    save_gguf(writer, out_path)
    log.info("wrote LoRA adapter %s (%s, %d matrix pairs, alpha %s%s, %.1f MB)", out_path, kind,
             len(pairs), gguf_alpha, ", scales folded into lora_b" if fold else "",
             os.path.getsize(out_path) / 1e6)
    return out_path


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]

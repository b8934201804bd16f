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
``UnsupportedModelError``: export the merged model for those. Fused layers (Phi-3's
``qkv_proj`` and ``gate_up_proj``) stay fused in llama.cpp, so their pairs are written as they
are. The adapter is read by ``export.adapter``; names and the Q/K permutation come from the
architecture spec in ``export.arch``, shared with the model writer.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from export.adapter import LoraAdapter
from export.arch import model_spec, read_config
from export.errors import UnsupportedModelError
from export.gguf_writer import save_gguf

log = logging.getLogger(__name__)

LORA_OUTTYPES = ("F32", "F16", "BF16")


def write_lora_gguf(adapter_dir: Path | str, base_dir: Path | str, out_path: Path | str,
                    outtype: str = "F16", *, name: str | None = None) -> Path:
    """Write the PEFT LoRA adapter in ``adapter_dir`` as a llama.cpp GGUF adapter.

    ``base_dir`` is a Hugging Face directory with the base model's ``config.json`` (only the
    config is read). ``outtype`` is F32, F16 or BF16. Written through a temporary file.
    Returns ``out_path``.
    """
    import gguf

    adapter_dir, base_dir, out_path = Path(adapter_dir), Path(base_dir), Path(out_path)
    kind = outtype.upper()
    if kind not in LORA_OUTTYPES:
        raise ValueError(f"a LoRA GGUF is written as {', '.join(LORA_OUTTYPES)}, not {outtype!r}")
    qtype = getattr(gguf.GGMLQuantizationType, kind)
    adapter = LoraAdapter.load(adapter_dir)
    if adapter.replacements:
        raise UnsupportedModelError(
            f"the adapter also trains whole modules ({', '.join(sorted(adapter.replacements))}); "
            "llama.cpp applies only LoRA pairs: export the merged model")
    if adapter.embedding_modules:
        raise UnsupportedModelError("the adapter trains the token embeddings; llama.cpp cannot apply "
                                    "that: export the merged model")
    spec = model_spec(read_config(base_dir), base_dir)
    tensor_map = spec.tensor_map()

    # One alpha for all, if every module's PEFT scale is alpha / its rank; else fold the scales.
    alpha = adapter.single_alpha()
    fold = alpha is None

    writer = gguf.GGUFWriter(path=None, arch=spec.arch_name)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 0.0 if fold else alpha)
    writer.add_name(name or f"{adapter_dir.name} (LoRA)")
    writer.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                          "BF16": gguf.LlamaFileType.MOSTLY_BF16}[kind])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    for module in sorted(adapter.pairs, key=_natural_key):
        lora_a = adapter.pairs[module]["A"].numpy()
        lora_b = adapter.pairs[module]["B"].numpy()
        hf_name = module + ".weight"
        gguf_name = spec.gguf_name(hf_name, tensor_map)
        if gguf_name == "output.weight" and spec.tied:
            raise UnsupportedModelError("the adapter changes lm_head, which the base shares with the "
                                        "embeddings; llama.cpp cannot apply that: export the merged model")
        if fold:
            lora_b = lora_b * np.float32(adapter.scale(module))
        lora_b = spec.permute_rows(hf_name, lora_b)
        for suffix, data in (("lora_a", lora_a), ("lora_b", lora_b)):
            data = np.ascontiguousarray(data, dtype=np.float32)
            writer.add_tensor(f"{gguf_name}.{suffix}", gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    save_gguf(writer, out_path)
    log.info("wrote LoRA adapter %s (%s, %d matrix pairs, alpha %s%s, %.1f MB)", out_path, kind,
             len(adapter.pairs), alpha, ", scales folded into lora_b" if fold else "",
             os.path.getsize(out_path) / 1e6)
    return out_path


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]

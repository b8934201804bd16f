"""Write a llama-family Hugging Face model directory as one GGUF file for llama.cpp.

Owns the model half of the GGUF (architecture, hyper-parameters, tensors); the tokenizer
half comes from ``export.vocab``. Uses the ``gguf`` package the way llama.cpp's own
``convert_hf_to_gguf.py`` does: ``gguf.GGUFWriter``, the architecture from
``gguf.MODEL_ARCH``, tensor names from ``gguf.get_tensor_name_map`` and quantization with
``gguf.quants``.

Supported: ``model_type`` llama, mistral (both written as GGUF arch "llama") and qwen2
(arch "qwen2", with its q/k/v biases); tied or untied embeddings; RoPE default, linear and
llama3 scaling. Output types written directly: F32, F16, BF16, Q8_0 (1-D tensors such as
norms and biases always stay F32, as llama.cpp expects). K-quants go through
``export.quantize`` (llama.cpp's own quantizer) starting from an F16 file.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.atomic import atomic_file
from export.errors import ExportError, UnsupportedModelError

log = logging.getLogger(__name__)

DIRECT_OUTTYPES = ("F32", "F16", "BF16", "Q8_0")


@dataclass(frozen=True)
class _Arch:
    gguf_arch: str        # name of the gguf.MODEL_ARCH member
    permute_qk: bool      # llama.cpp's "llama" arch expects Q/K rows in interleaved-RoPE order


# HF model_type -> how llama.cpp sees it. Mistral is llama with sliding-window attention in HF;
# llama.cpp's converter writes it as "llama" as well.
_ARCHS = {
    "llama": _Arch("LLAMA", permute_qk=True),
    "mistral": _Arch("LLAMA", permute_qk=True),
    "qwen2": _Arch("QWEN2", permute_qk=False),  # NEOX-style RoPE in llama.cpp: no permutation
}

SUPPORTED_MODEL_TYPES = tuple(_ARCHS)


def _outtype(outtype: str):
    import gguf

    name = outtype.upper()
    table = {
        "F32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
        "F16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
        "BF16": (gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16),
        "Q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
    }
    if name not in table:
        raise ValueError(f"outtype {outtype!r} cannot be written directly; "
                         f"choose one of {', '.join(DIRECT_OUTTYPES)} (K-quants: export.quantize)")
    return table[name]


def read_config(hf_dir: Path) -> dict[str, Any]:
    cfg_path = Path(hf_dir) / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"no config.json in {hf_dir}: not a Hugging Face model directory")
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    if "text_config" in config and "num_hidden_layers" not in config:
        config = {**config, **config["text_config"]}
    return config


def _rope(config: dict[str, Any]) -> dict[str, Any]:
    """RoPE parameters from either transformers 5 (``rope_parameters``) or 4 (``rope_theta``
    + ``rope_scaling``) configs."""
    params = dict(config.get("rope_parameters") or {})
    if "full_attention" in params:  # per-layer-type parameters
        params = dict(params["full_attention"])
    scaling = config.get("rope_scaling") or {}
    for key, value in scaling.items():
        params.setdefault(key, value)
    if "rope_theta" not in params and "rope_theta" in config:
        params["rope_theta"] = config["rope_theta"]
    if "rope_type" not in params and "type" in params:
        params["rope_type"] = params["type"]
    params.setdefault("rope_theta", 10000.0)
    params.setdefault("rope_type", "default")
    return params


def _llama3_rope_factors(rope: dict[str, Any], head_dim: int) -> np.ndarray:
    """Per-frequency divisors of Llama 3.1+'s RoPE scaling (llama.cpp's ``rope_freqs``)."""
    base = float(rope["rope_theta"])
    factor = float(rope.get("factor", 8.0))
    low = float(rope.get("low_freq_factor", 1.0))
    high = float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    inv_freq = 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / inv_freq
    smooth = (old_ctx / wavelen - low) / (high - low)
    factors = np.where(
        wavelen < old_ctx / high, 1.0,
        np.where(wavelen > old_ctx / low, factor, 1.0 / ((1 - smooth) / factor + smooth)))
    return factors.astype(np.float32)


def _iter_hf_tensors(hf_dir: Path) -> Iterator[tuple[str, "np.ndarray"]]:
    """(name, float32 array) for every tensor of the model, one file at a time."""
    import torch

    files = sorted(hf_dir.glob("*.safetensors"))
    if files:
        from safetensors import safe_open

        for path in files:
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():
                    yield name, f.get_tensor(name).to(torch.float32).numpy()
        return
    files = sorted(hf_dir.glob("pytorch_model*.bin"))
    if not files:
        raise ExportError(f"no model weights (*.safetensors or pytorch_model*.bin) in {hf_dir}")
    for path in files:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        for name, tensor in state.items():
            yield name, tensor.to(torch.float32).numpy()


def _permute_for_llama_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder Q/K projection rows from HF's rotate-half RoPE layout to the interleaved
    (pairwise) layout llama.cpp's "llama" arch applies RoPE in.

    HF keeps each head's two RoPE halves as [x0..x(d/2-1), x(d/2)..x(d-1)]; llama.cpp rotates
    adjacent pairs (x0, x1), (x2, x3), ... so row ``h*d + 2i + j`` must hold HF row
    ``h*d + j*d/2 + i``. transformers' GGUF loader applies the inverse when reading back.
    """
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise UnsupportedModelError(f"Q/K projection with {rows} rows does not split into {n_head} heads")
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def write_gguf(hf_dir: Path | str, out_path: Path | str, outtype: str = "F16", *,
               name: str | None = None) -> Path:
    """Write the HF model in ``hf_dir`` (config, safetensors, tokenizer) to ``out_path``.

    ``outtype`` is one of F32, F16, BF16, Q8_0. The file is written to a temporary sibling
    and renamed into place, so ``out_path`` never holds a partial file. Returns ``out_path``.
    Raises ``UnsupportedModelError`` (an ``ExportError``) for architectures, tokenizers or
    RoPE variants that are not supported yet.
    """
    import gguf

    from export.vocab import read_vocab

    hf_dir, out_path = Path(hf_dir), Path(out_path)
    file_type, default_qtype = _outtype(outtype)
    config = read_config(hf_dir)
    model_type = config.get("model_type")
    arch = _ARCHS.get(model_type)
    if arch is None:
        raise UnsupportedModelError(
            f"unsupported architecture {model_type!r} in {hf_dir}; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}")

    n_layer = int(config["num_hidden_layers"])
    n_embd = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    head_dim = int(config.get("head_dim") or n_embd // n_head)
    n_vocab = int(config["vocab_size"])
    tied = bool(config.get("tie_word_embeddings", False))
    rope = _rope(config)
    rope_type = str(rope.get("rope_type", "default")).lower()
    if rope_type not in ("default", "linear", "llama3"):
        raise UnsupportedModelError(f"RoPE scaling {rope_type!r} is not supported yet")

    vocab = read_vocab(hf_dir, n_vocab=n_vocab, config=config)

    model_arch = getattr(gguf.MODEL_ARCH, arch.gguf_arch)
    writer = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[model_arch])
    tensor_map = gguf.get_tensor_name_map(model_arch, n_layer)

    # -- metadata -------------------------------------------------------------------------
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or config.get("_name_or_path") or hf_dir.name)
    n_ctx = int(config.get("max_position_embeddings") or 2048)
    window = config.get("sliding_window")
    if model_type == "mistral" and isinstance(window, int) and 0 < window < n_ctx:
        # llama.cpp's "llama" arch attends to the whole context; past the window the HF
        # model would not, so advertise the window as the trained context.
        n_ctx = window
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    if head_dim != n_embd // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_rope_dimension_count(head_dim)
    if rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.add_to_gguf(writer)

    # -- tensors --------------------------------------------------------------------------
    def add(gguf_name: str, data: np.ndarray) -> None:
        qtype = default_qtype
        if data.ndim <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
            qtype = gguf.GGMLQuantizationType.F32  # norms, biases, rope factors
        try:
            packed = gguf.quants.quantize(data, qtype)
        except gguf.QuantError:
            # rows not a multiple of the block size (32 for Q8_0): keep such tensors in F16
            qtype = gguf.GGMLQuantizationType.F16
            packed = gguf.quants.quantize(data, qtype)
        writer.add_tensor(gguf_name, packed, raw_dtype=qtype)

    if rope_type == "llama3":
        add(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight",
            _llama3_rope_factors(rope, head_dim))

    seen_output = False
    for hf_name, data in _iter_hf_tensors(hf_dir):
        if hf_name.endswith((".rotary_emb.inv_freq", ".attention.masked_bias")):
            continue
        if hf_name == "lm_head.weight" and tied:
            continue  # llama.cpp reuses token_embd when output.weight is absent
        gguf_name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UnsupportedModelError(f"tensor {hf_name!r} has no GGUF equivalent for {model_type}")
        if arch.permute_qk:
            if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                data = _permute_for_llama_rope(data, n_head)
            elif hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                data = _permute_for_llama_rope(data, n_head_kv)
        seen_output |= hf_name == "lm_head.weight"
        add(gguf_name, data)
    if not tied and not seen_output:
        raise ExportError(f"{hf_dir} has untied embeddings but no lm_head.weight")

    save_gguf(writer, out_path)
    log.info("wrote %s (%s, %.1f MB, tokenizer %s/%s: %s)", out_path, outtype.upper(),
             os.path.getsize(out_path) / 1e6, vocab.model, vocab.pre, vocab.pre_reason)
    return out_path


def save_gguf(writer, out_path: Path | str) -> None:
    """Write a filled ``gguf.GGUFWriter`` to ``out_path`` through a temporary file (an
    interrupted write leaves no partial GGUF) and close it."""
    with atomic_file(out_path, suffix=".gguf.tmp") as tmp:
        try:
            writer.write_header_to_file(path=tmp)
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file(progress=False)
        finally:
            writer.close()

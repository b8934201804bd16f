"""Write a model (a HF directory, or a base with its LoRA merged in) as one GGUF for llama.cpp.

Owns the model half of the GGUF: metadata and tensors; the tokenizer half comes from
``export.vocab`` and the per-family rules from ``export.arch``. Uses the ``gguf`` package the
way llama.cpp's own converter does (``gguf.GGUFWriter``, ``gguf.get_tensor_name_map``,
``gguf.quants``), in its streaming mode: every tensor's name, shape and type is declared first
(``add_tensor_info``, from the checkpoint headers), the header is written, and then each
tensor is read, merged, converted and written (``write_tensor_data``) before the next one
is read. Memory is bounded by the largest tensor, not the model (and a vocabulary-sized
tensor is read, merged and quantized a slice of rows at a time).

Output types written directly: F32, F16, BF16, Q8_0 (1-D tensors such as norms and biases
always stay F32, as llama.cpp expects; Q8_0 tensors whose rows are not a multiple of 32 stay
F16). K-quants go through ``export.quantize`` (llama.cpp's own quantizer) from an F16 file.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.atomic import atomic_file
from export.errors import ExportInputError
from export.weights import ModelSource

log = logging.getLogger(__name__)

DIRECT_OUTTYPES = ("F32", "F16", "BF16", "Q8_0")


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


# A tensor bigger than this in float32 (the vocabulary-sized embeddings) is read, merged and
# quantized a slice of rows at a time into its output buffer.
SLICE_BYTES = 128 << 20


@dataclass
class _Planned:
    gguf_name: str
    shape: tuple[int, ...]
    qtype: Any
    read: Callable[[slice | None], np.ndarray]   # float32 data (all rows, or a slice), computed when written
    sliceable: bool = False

    def packed(self) -> np.ndarray:
        """The tensor as the GGUF stores it, ``SLICE_BYTES`` of float32 at a time if it may."""
        import gguf

        n_rows = self.shape[0] if self.shape else 1
        row_bytes = 4 * int(np.prod(self.shape[1:], dtype=np.int64)) if len(self.shape) > 1 else 4
        step = max(1, SLICE_BYTES // row_bytes)
        if not self.sliceable or n_rows <= step:
            return gguf.quants.quantize(_checked(self.read(None), self), self.qtype)
        out = None
        for start in range(0, n_rows, step):
            rows = slice(start, min(n_rows, start + step))
            part = gguf.quants.quantize(_checked(self.read(rows), self, rows), self.qtype)
            if out is None:
                out = np.empty((n_rows, *part.shape[1:]), dtype=part.dtype)
            out[rows] = part
            del part
        return out


def _checked(data, item: _Planned, rows: slice | None = None) -> np.ndarray:
    data = np.ascontiguousarray(data, dtype=np.float32)
    want = item.shape if rows is None else (rows.stop - rows.start, *item.shape[1:])
    if tuple(data.shape) != tuple(want):
        raise ExportInputError(f"{item.gguf_name}: shape {data.shape}, the checkpoint header said {want}")
    return data


def _qtype_for(gguf_name: str, shape: tuple[int, ...], default_qtype):
    import gguf

    if len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return gguf.GGMLQuantizationType.F32  # norms, biases, rope factors
    block, _ = gguf.GGML_QUANT_SIZES[default_qtype]
    if shape[-1] % block:
        return gguf.GGMLQuantizationType.F16  # rows not a multiple of the block size
    return default_qtype


def _plan(source: ModelSource, default_qtype) -> list[_Planned]:
    """Every tensor of the GGUF in writing order, from the checkpoint headers alone."""
    spec = source.spec
    tensor_map = spec.tensor_map()
    planned: list[_Planned] = []

    def add(gguf_name: str, shape: tuple[int, ...], read, sliceable: bool = False) -> None:
        planned.append(_Planned(gguf_name, shape, _qtype_for(gguf_name, shape, default_qtype), read, sliceable))

    for gguf_name, data in spec.extra_tensors().items():
        add(gguf_name, tuple(data.shape), lambda rows, data=data: data)

    def reader(hf_name: str):
        return lambda rows: spec.transform(hf_name, source.tensor(hf_name, rows).numpy())

    names = [n for n in source.names() if spec.hf_tensor_name(n) is not None]
    embed = None
    seen_output = False
    for hf_name in names:
        gguf_name = spec.gguf_name(hf_name, tensor_map)
        # An output layer in the checkpoint is written even when the config says "tied":
        # transformers unties what a checkpoint stores twice with different values, and writing
        # it is right either way. Without it, llama.cpp reuses token_embd.
        seen_output |= gguf_name == "output.weight"
        if gguf_name == "token_embd.weight":
            embed = hf_name
        add(gguf_name, source.shape(hf_name), reader(hf_name), spec.rows_independent(hf_name))
    if not spec.tied and not seen_output:
        raise ExportInputError(f"{source.base_dir} has untied embeddings but no lm_head.weight")
    if not seen_output and spec.rule.needs_output and embed is not None:
        add("output.weight", source.shape(embed), reader(embed), True)  # llama.cpp wants it written out
    return planned


def write_gguf(model: Path | str | ModelSource, out_path: Path | str, outtype: str = "F16", *,
               name: str | None = None, metadata: dict[str, Any] | None = None,
               system: str | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``model`` (a HF directory, or a :class:`ModelSource` with an adapter merged in)
    to ``out_path`` as ``outtype`` (F32, F16, BF16 or Q8_0).

    ``metadata`` adds keys (twin's persona, rules and sampling; strings, ints and floats, typed
    as such). ``system`` becomes the chat template's default system line
    (``voice.exported.twin_chat_template``). The file is written
    to a temporary sibling and renamed into place, so ``out_path`` never holds a partial
    file. Returns ``out_path``. Raises ``UnsupportedModelError`` for architectures, tokenizers
    or RoPE variants that are not supported. ``progress(done, total)`` is called per tensor.
    """
    import gguf

    from export.vocab import read_vocab
    from voice.exported import gguf_value_type, twin_chat_template

    source = model if isinstance(model, ModelSource) else ModelSource(model)
    out_path = Path(out_path)
    file_type, default_qtype = _outtype(outtype)
    spec = source.spec
    vocab = read_vocab(source.tokenizer_dir, n_vocab=spec.n_vocab, config=source.config)
    if system is not None:
        vocab.chat_template = twin_chat_template(vocab.chat_template, system)
    planned = _plan(source, default_qtype)

    writer = gguf.GGUFWriter(path=None, arch=spec.arch_name)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or source.config.get("_name_or_path") or source.base_dir.name)
    spec.write_hparams(writer)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.add_to_gguf(writer)
    for key, value in (metadata or {}).items():
        writer.add_key_value(key, value, gguf_value_type(value))
    for item in planned:  # declared up front from the headers: the data follows tensor by tensor
        byte_shape = gguf.quant_shape_to_byte_shape(item.shape, item.qtype)
        writer.add_tensor_info(item.gguf_name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)),
                               raw_dtype=item.qtype)

    with atomic_file(out_path, suffix=".gguf.tmp") as tmp:
        try:
            writer.write_header_to_file(path=tmp)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for i, item in enumerate(planned):
                writer.write_tensor_data(item.packed())
                if progress is not None:
                    progress(i + 1, len(planned))
        finally:
            writer.close()
    log.info("wrote %s (%s, %.1f MB, tokenizer %s/%s: %s)", out_path, outtype.upper(),
             os.path.getsize(out_path) / 1e6, vocab.model, vocab.pre, vocab.pre_reason)
    return out_path


def save_gguf(writer, out_path: Path | str) -> None:
    """Write a filled ``gguf.GGUFWriter`` (tensors added with ``add_tensor``) to ``out_path``
    through a temporary file (an interrupted write leaves no partial GGUF) and close it."""
    with atomic_file(out_path, suffix=".gguf.tmp") as tmp:
        try:
            writer.write_header_to_file(path=tmp)
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file(progress=False)
        finally:
            writer.close()

"""Quantize a GGUF with llama.cpp's own quantizer (through llama-cpp-python).

Owns the K-quants and every other type ``gguf``'s Python code does not write itself
(Q4_K_M, Q5_K_M, Q6_K, Q4_0, IQ4_XS, ...). The quantizer picks per-tensor types the way
``llama-quantize`` does (e.g. Q4_K_M keeps some attention/FFN tensors at Q6_K, and tensors
whose rows are not a multiple of 256 fall back to a compatible type), so the input should be
an F16 (or F32/BF16) GGUF from ``export.gguf_writer``.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from core.atomic import atomic_file
from export.errors import ExportError

log = logging.getLogger(__name__)

# name -> llama_ftype constant name in llama_cpp (resolved lazily: importing llama_cpp
# loads the shared library).
_FTYPE_NAMES = {
    "F32": "LLAMA_FTYPE_ALL_F32",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "BF16": "LLAMA_FTYPE_MOSTLY_BF16",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q5_K_S": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "Q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "IQ4_NL": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
    "IQ4_XS": "LLAMA_FTYPE_MOSTLY_IQ4_XS",
    "Q3_K_L": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q3_K_S": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
}
# IQ2/IQ3/IQ1 types are left out on purpose: llama.cpp requires an importance matrix for them.

QUANT_NAMES = tuple(_FTYPE_NAMES)


class _Captured:
    def __init__(self, path: str):
        self.path = path
        self._text: str | None = None

    def read(self) -> str:
        if self._text is None:
            sys.stderr.flush()
            try:
                with open(self.path, encoding="utf-8", errors="replace") as f:
                    return f.read()
            except OSError:
                return ""
        return self._text


@contextlib.contextmanager
def _captured_stderr() -> Iterator[_Captured]:
    """Redirect the process's stderr (fd 2, where C code writes) into a temporary file."""
    sys.stderr.flush()
    fd, path = tempfile.mkstemp(prefix="twin-quantize-", suffix=".log")
    saved = os.dup(2)
    captured = _Captured(path)
    try:
        os.dup2(fd, 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured._text = captured.read()
    finally:
        os.close(saved)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)


def _last_lines(text: str, n: int = 2) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "warning:" not in ln]
    return " / ".join(lines[-n:])


def quant_ftype(quant: str) -> int:
    """The ``llama_ftype`` value for a quant name (case-insensitive); ValueError if unknown."""
    key = quant.strip().upper()
    if key not in _FTYPE_NAMES:
        raise ValueError(f"unknown quantization {quant!r}; valid: {', '.join(QUANT_NAMES)}")
    import llama_cpp

    value = getattr(llama_cpp, _FTYPE_NAMES[key], None)
    if value is None:
        raise ValueError(f"quantization {key} is not available in this llama-cpp-python "
                         f"({getattr(llama_cpp, '__version__', '?')})")
    return int(value)


def quantize_gguf(src: Path | str, dst: Path | str, quant: str, *, n_threads: int | None = None) -> Path:
    """Quantize ``src`` (an F16/BF16/F32 GGUF) to ``dst`` as ``quant`` (e.g. "Q4_K_M").

    ``dst`` is written through a temporary sibling and renamed, so it never holds a partial
    file. Returns ``dst``. Raises ValueError for an unknown ``quant`` and ExportError if
    llama.cpp fails.
    """
    src, dst = Path(src), Path(dst)
    ftype = quant_ftype(quant)
    if not src.is_file():
        raise ExportError(f"cannot quantize {src}: no such file")
    if src.resolve() == dst.resolve():
        raise ExportError("quantize_gguf needs a destination different from its source")

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = n_threads or os.cpu_count() or 1

    # llama.cpp reports every tensor (and every fallback to a compatible type) on stderr,
    # through llama-cpp-python's log callback and with plain prints: keep that out of the
    # user's terminal and surface only the summary or the error.
    with atomic_file(dst, suffix=".gguf.tmp") as tmp, _captured_stderr() as captured:
        rc = llama_cpp.llama_model_quantize(
            str(src).encode("utf-8"), str(tmp).encode("utf-8"), ctypes.byref(params))
        if rc != 0:
            detail = _last_lines(captured.read())
            raise ExportError(f"llama.cpp could not quantize {src.name} to {quant.upper()}"
                              + (f": {detail}" if detail else f" (error {rc})"))
    for line in captured.read().splitlines():
        if "fallback quantization" in line:  # e.g. "180 of 272 tensor(s) required fallback ..."
            log.info("llama.cpp: %s", line.split("WARNING:")[-1].strip())
    log.info("quantized %s -> %s (%s, %.1f MB)", src, dst, quant.upper(), dst.stat().st_size / 1e6)
    return dst

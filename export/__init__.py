"""The ``export`` stage: trained adapter -> merged HF model -> GGUF for llama.cpp.

``twin export --workspace W`` reads the PEFT adapter (and tokenizer) from ``W/adapter/``,
merges it into the base model (``W/model/hf/``), writes ``W/model/twin-<QUANT>.gguf`` with
the ``gguf`` package (quantizing with llama.cpp's own quantizer for K-quants), checks that
llama.cpp's logits match transformers', and writes an Ollama ``W/model/Modelfile``.

Modules (each owns one step, so each can be used and tested alone):

- ``merge``       merge a LoRA adapter into its full-precision base model
- ``gguf_writer`` write a llama-family HF model as GGUF (F32/F16/BF16/Q8_0)
- ``vocab``       tokenizer -> GGUF tokenizer metadata (BPE vocab, merges, pre-tokenizer, ...)
- ``quantize``    K-quants and friends through llama.cpp's quantizer (llama-cpp-python)
- ``verify``      logit parity between the GGUF (llama.cpp) and the HF model (transformers)
- ``modelfile``   the Ollama Modelfile beside the GGUF
- ``llama_runtime`` opening GGUFs with llama-cpp-python safely (AMX crash guard, threads)
- ``errors``      the one exception type the CLI turns into a one-line message
- ``cli``         the ``twin export`` click command

Heavy libraries (torch, transformers, llama_cpp) are imported inside functions, so importing
this package (e.g. to build the root ``twin`` CLI) stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ExportError",
    "merge_adapter",
    "write_gguf",
    "quantize_gguf",
    "verify_gguf",
    "export_command",
]

_WHERE = {
    "ExportError": "export.errors",
    "merge_adapter": "export.merge",
    "write_gguf": "export.gguf_writer",
    "quantize_gguf": "export.quantize",
    "verify_gguf": "export.verify",
    "export_command": "export.cli",
}


def __getattr__(name: str) -> Any:  # lazy re-exports: `from export import write_gguf`
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

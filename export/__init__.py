"""The ``export`` stage: trained adapter -> GGUF for llama.cpp / Ollama, checked.

``twin export --workspace W`` (``export.cli``) calls :func:`run_export` (``export.pipeline``):
the PEFT adapter in ``W/adapter/`` is merged into its base tensor by tensor while
``W/model/twin-<QUANT>.gguf`` is written with the ``gguf`` package (K-quants by llama.cpp's
own quantizer), llama.cpp's logits are checked against transformers', and an Ollama
``W/model/Modelfile`` is written.

Modules (each owns one step, so each can be used and tested alone):

- ``pipeline``    ``run_export``: the steps in order, staging and checking
- ``arch``        the public spec of each supported architecture (names, hparams, weight rules)
- ``adapter``     a PEFT LoRA adapter: its pairs and scales
- ``weights``     base checkpoint + adapter, read and merged one tensor at a time
- ``gguf_writer`` write a model as GGUF (F32/F16/BF16/Q8_0), streaming
- ``lora_gguf``   write the adapter alone as a llama.cpp LoRA GGUF
- ``vocab``       tokenizer -> GGUF tokenizer metadata (BPE vocab, merges, SentencePiece scores, ...)
- ``merge``       the merged model as a HF directory (``--keep-merged``), sharded, base dtype
- ``quantize``    K-quants and friends through llama.cpp's quantizer (llama-cpp-python)
- ``verify``      logit parity between a GGUF (llama.cpp) and transformers, or another GGUF
- (the Ollama Modelfile and the GGUF's voice keys live in ``voice.modelfile`` / ``voice.exported``)
- ``errors``      the stage's errors, on core's error base
- ``cli``         the ``twin export`` click command

Heavy libraries (torch, transformers, llama_cpp) are imported inside functions, so importing
this package (e.g. to build the root ``twin`` CLI) stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ExportError",
    "ExportOptions",
    "run_export",
    "merge_adapter",
    "write_gguf",
    "quantize_gguf",
    "verify_gguf",
    "export_command",
]

_WHERE = {
    "ExportError": "export.errors",
    "ExportOptions": "export.pipeline",
    "run_export": "export.pipeline",
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

"""Choosing and loading the model backend ``twin serve`` and ``twin chat`` generate with.

* llama.cpp (the default) serves an exported GGUF: :class:`~voice.llama.BatchedLlamaBackend`
  (continuous batching, ``--parallel`` / ``--workers``) or, one reply at a time,
  :class:`~voice.llama.LlamaCppBackend`;
* transformers serves the base model + the workspace's LoRA adapter
  (:class:`~voice.hf.TransformersBackend`), before ``twin export``.

The backends themselves are the runtimes of the voice package (below the stages, shared with
``twin eval``). The workspace's model GGUF is :meth:`core.workspace.Workspace.newest_model_gguf`
(never the LoRA adapter GGUF).
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import InputError
from core.workspace import Workspace
from core.settings import REQUEST_TIMEOUT_S

from voice.backend import DEFAULT_CONTEXT, Backend, BackendError, Generation, PromptTooLong
from voice.llama import BatchedLlamaBackend, LlamaCppBackend
from voice.queueing import Gate

BACKENDS = ("llama", "transformers")
__all__ = ["BACKENDS", "Backend", "BackendError", "BatchedLlamaBackend", "Generation", "LlamaCppBackend",
           "PromptTooLong", "auto_workers", "open_backend"]


def auto_workers(threads: int | None, gpu_layers: int) -> int:
    """Workers for batching: one per ``threads`` CPUs (at most 4); one when a GPU does the work."""
    from voice.llama_runtime import default_threads

    if gpu_layers:
        return 1
    return max(1, min(4, (os.cpu_count() or 1) // (threads or default_threads())))


def open_backend(kind: str = "llama", *, workspace: Path | None = None, model_path: Path | None = None,
                 gpu_layers: int = 0, threads: int | None = None, context: int = DEFAULT_CONTEXT, parallel: int = 1,
                 workers: int = 1, gate: Gate | None = None, timeout: float | None = REQUEST_TIMEOUT_S) -> Backend:
    """Load the backend a command asked for; every expected failure is a one-line error
    (BackendError, or core's InputError for a workspace step not done yet)."""
    if kind == "llama":
        path = model_path or Workspace(Path(workspace)).newest_model_gguf()
        if parallel > 1 or workers > 1:
            return BatchedLlamaBackend(path, parallel=parallel, workers=workers, gpu_layers=gpu_layers,
                                       threads=threads, context=context, gate=gate, timeout=timeout)
        return LlamaCppBackend(path, gpu_layers=gpu_layers, threads=threads, context=context,
                               gate=gate, timeout=timeout)
    if kind != "transformers":
        raise BackendError(f"unknown backend {kind!r}: choose one of {', '.join(BACKENDS)}")
    if workspace is None:
        raise InputError("--backend transformers needs --workspace (it loads WORKSPACE/adapter)")
    ws = Workspace(Path(workspace))
    ws.require_adapter()
    from trainer.base_model import workspace_base
    from voice.hf import TransformersBackend

    return TransformersBackend(workspace_base(ws, log=lambda *a: None), ws.adapter_dir, threads=threads, gate=gate,
                               timeout=timeout)

"""Choosing and loading the model backend ``twin serve`` and ``twin chat`` generate with.

* llama.cpp (the default) serves an exported GGUF: :class:`~voice.llama.BatchedLlamaBackend`
  (continuous batching, ``--parallel`` / ``--workers``) or, one reply at a time,
  :class:`~voice.llama.LlamaCppBackend`;
* transformers serves the base model + the workspace's LoRA adapter
  (:class:`~voice.hf.TransformersBackend`), before ``twin export``.

The backends themselves are the runtimes of the voice package (below the stages, shared with
``twin eval``). The workspace's model GGUF is :meth:`core.workspace.Workspace.newest_model_gguf`
(never the LoRA adapter GGUF).

:class:`SwappableBackend` is what ``twin serve`` hands the app: it puts a newly loaded backend
in place while requests run on the old one (server.hot_swap says when).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Iterator

from core.errors import InputError
from core.workspace import Workspace
from core.settings import REQUEST_TIMEOUT_S

from voice.backend import DEFAULT_CONTEXT, Backend, BackendError, Generation, PromptTooLong
from voice.llama import BatchedLlamaBackend, LlamaCppBackend
from voice.queueing import Gate

BACKENDS = ("llama", "transformers")
__all__ = ["BACKENDS", "Backend", "BackendError", "BatchedLlamaBackend", "Generation", "LlamaCppBackend",
           "PromptTooLong", "SwappableBackend", "auto_workers", "open_backend"]
log = logging.getLogger("twin.server")


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


class _Lease:
    """One generation's hold on a backend: the inner stream, and the release once it is done
    (finished, closed or dropped)."""

    def __init__(self, owner: "SwappableBackend", entry: "_Loaded", pieces: Iterator[str]):
        self._owner, self._entry, self._pieces = owner, entry, pieces

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            return next(self._pieces)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            try:
                close = getattr(self._pieces, "close", None)
                if close is not None:
                    close()
            finally:
                self._owner._release(entry)

    def __del__(self):
        self.close()


class _Loaded:
    def __init__(self, backend):
        self.backend, self.leases, self.retired = backend, 0, False


class SwappableBackend:
    """The backend the server generates with, swappable while it serves (``twin serve``'s hot swap).

    Each generation holds the backend it started on until its last piece (a lease); :meth:`swap`
    puts a new backend in place for the generations that start after it, and the old one is
    closed once its last generation is done (at once when none is running). Nothing is refused
    or cut during a swap. Everything else (name, metadata, bans, queue depth) is the current one's.
    """

    def __init__(self, backend):  # no gate of its own: each backend keeps its own
        self._lock = threading.Lock()
        self._current = _Loaded(backend)
        self.swaps = 0

    @property
    def current(self):
        return self._current.backend

    def __getattr__(self, name):  # name, metadata, first_banned, style_tokens, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._current.backend, name)

    @property
    def name(self) -> str:
        return getattr(self._current.backend, "name", "twin")

    @property
    def metadata(self) -> dict:
        return getattr(self._current.backend, "metadata", {}) or {}

    def stream(self, messages: list[dict], decoding=None, *, stats: dict | None = None, **changes) -> Iterator[str]:
        with self._lock:
            entry = self._current
            entry.leases += 1
        try:
            pieces = iter(entry.backend.stream(messages, decoding, stats=stats, **changes))
        except BaseException:
            self._release(entry)
            raise
        return _Lease(self, entry, pieces)

    def generate(self, messages: list[dict], decoding=None, **changes) -> Generation:
        stats: dict = {}
        text = "".join(self.stream(messages, decoding, stats=stats, **changes))
        return Generation(text, stats["finish_reason"], stats["prompt_tokens"], stats["completion_tokens"])

    def queue_depth(self) -> int:
        depth = getattr(self._current.backend, "queue_depth", None)
        return depth() if depth else 0

    def swap(self, backend) -> None:
        """Serve ``backend`` from now on; the previous one is closed when idle."""
        with self._lock:
            old, self._current = self._current, _Loaded(backend)
            old.retired = True
            idle = old.leases == 0
            self.swaps += 1
        if idle:
            _close(old.backend)

    def _release(self, entry: _Loaded) -> None:
        with self._lock:
            entry.leases -= 1
            idle = entry.retired and entry.leases == 0
        if idle:
            _close(entry.backend)

    def close(self) -> None:
        _close(self._current.backend)


def _close(backend) -> None:
    close = getattr(backend, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - a retired model that fails to close must not fail a request
            log.warning("closing the previous model failed", exc_info=True)

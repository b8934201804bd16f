"""Model backends the server generates with. The llama.cpp one serves an exported GGUF.

A llama.cpp context is not thread-safe, so every backend serialises generation with a lock;
the WSGI server's threads queue on it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from dataprocess.template import stop_strings


class BackendError(RuntimeError):
    """The model cannot be loaded."""


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (DONE / end of turn) or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LlamaCppBackend:
    """Generation from a GGUF file through llama-cpp-python, with the file's chat template."""

    def __init__(self, model_path: Path, *, gpu_layers: int = 0, threads: int | None = None,
                 context: int = 2048, seed: int = 0):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise BackendError(f"model file not found: {model_path}")
        from export.llama_runtime import default_threads, open_llama

        try:
            self.llm = open_llama(model_path, n_ctx=context, n_gpu_layers=gpu_layers,
                                  n_threads=threads or default_threads(), seed=seed)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"cannot load {model_path} as a GGUF model: {exc}") from None
        self.name = model_path.stem
        self.metadata = dict(self.llm.metadata)
        self._lock = threading.Lock()

    def generate(self, messages: list[dict], *, temperature: float = 0.7, max_tokens: int = 64) -> Generation:
        with self._lock:
            out = self.llm.create_chat_completion(messages=messages, temperature=temperature,
                                                  max_tokens=max_tokens, stop=stop_strings())
        choice = out["choices"][0]
        usage = out.get("usage", {})
        return Generation(text=choice["message"]["content"] or "", finish_reason=choice["finish_reason"] or "stop",
                          prompt_tokens=usage.get("prompt_tokens", 0),
                          completion_tokens=usage.get("completion_tokens", 0))

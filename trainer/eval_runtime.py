"""Which runtime ``twin eval`` hears the twin through: the served one wherever it can.

``twin eval`` certifies what a client of ``twin serve`` gets, so its replies come from the same
runtime the server will use: the workspace's exported GGUF through llama.cpp
(:class:`ServedRuntime`: ``voice.llama`` and ``voice.replies.complete``, exactly the path of a
``POST /generate``, reply ``i`` of a round drawn with seed ``seed + i``), when there is one and it
was exported from the adapter trained now (its ``twin.adapter_fingerprint`` key). Before
``twin export`` (or when the GGUF is older than the adapter) the replies come from transformers
(:class:`TransformersRuntime`: ``voice.hf.generate_replies``, the same decoding contract; the
sampler parity test says the two draw from the same distributions). The report names the runtime.

Both answer :meth:`replies` with ``voice.replies.Reply`` records, as a client would see them.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core import artifacts
from core.base_ref import adapter_fingerprint
from core.workspace import Workspace
from voice.decoding import TRIES, Decoding
from voice.replies import Reply

RUNTIMES = ("auto", "llama", "transformers")


class TransformersRuntime:
    """Batched generation with transformers (the model and adapter eval has loaded anyway)."""

    name = "transformers"
    model_file = None

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def replies(self, prompts: list[list[dict]], decoding: Decoding, seed: int = 0) -> list[Reply]:
        from voice.hf import generate_replies

        return generate_replies(self.model, self.tokenizer, prompts, decoding, seed=seed)

    def close(self) -> None:
        pass


class ServedRuntime:
    """The exported GGUF, through the server's own llama.cpp backend and reply path."""

    name = "llama.cpp"

    def __init__(self, gguf: Path, parallel: int = 4, workers: int | None = None):
        from voice.llama import BatchedLlamaBackend
        from voice.llama_runtime import default_threads
        from voice.queueing import Gate

        threads = default_threads()
        self.workers = workers or max(1, min(4, (os.cpu_count() or 1) // threads))
        self.parallel = parallel
        self.model_file = Path(gguf)
        self.backend = BatchedLlamaBackend(gguf, parallel=parallel, workers=self.workers, threads=threads,
                                           gate=Gate(max_waiting=1 << 20, wait_timeout=None), timeout=None)

    def _one(self, prompt: list[dict], decoding: Decoding) -> Reply:
        from voice.replies import EmptyReply, complete

        try:
            return complete(self.backend, prompt, decoding)
        except EmptyReply:
            return Reply("", "stop", tries=TRIES)

    def replies(self, prompts: list[list[dict]], decoding: Decoding, seed: int = 0) -> list[Reply]:
        with ThreadPoolExecutor(self.parallel * self.workers) as pool:
            return list(pool.map(lambda item: self._one(item[1], decoding.with_changes(seed=seed + item[0])),
                                 enumerate(prompts)))

    def close(self) -> None:
        self.backend.close()


def exported_model(workspace: Workspace) -> tuple[Path | None, str]:
    """The workspace's newest model GGUF if it was exported from the current adapter, and why not."""
    import gguf

    found = artifacts.model_ggufs(workspace.model_dir)
    if not found:
        return None, "no exported model yet (`twin export` first to evaluate the served GGUF)"
    path = found[-1]
    try:
        field = gguf.GGUFReader(str(path)).get_field(artifacts.GGUF_KEY_ADAPTER)
        exported_from = field.contents() if field is not None else ""
    except (OSError, ValueError) as exc:
        return None, f"{path.name} cannot be read ({exc})"
    if exported_from != adapter_fingerprint(workspace.adapter_dir):
        return None, f"{path.name} was exported from another adapter than the one trained now (`twin export` again)"
    return path, ""


def open_runtime(workspace: Workspace, model, tokenizer, prefer: str = "auto", log=print):
    """The runtime eval generates the twin's replies with (see the module docstring)."""
    from .errors import EvalError

    if prefer not in RUNTIMES:
        raise EvalError(f"unknown runtime {prefer!r}: one of {', '.join(RUNTIMES)}")
    if prefer != "transformers":
        path, why = exported_model(workspace)
        if path is not None:
            log(f"replies from the served model: {path.name} through llama.cpp, as `twin serve` answers")
            return ServedRuntime(path)
        if prefer == "llama":
            raise EvalError(f"--runtime llama: {why}")
        log(f"replies from transformers: {why}")
    return TransformersRuntime(model, tokenizer)

"""Model backends the server and ``twin chat`` generate with.

* :class:`LlamaCppBackend` (the default) serves an exported GGUF through llama-cpp-python.
* :class:`TransformersBackend` serves the base model + the workspace's LoRA adapter through
  transformers and peft, for trying the twin before ``twin export``.

Both stream raw text pieces (the terminator ``DONE`` may still be in them: server.replies
filters it) and run one generation at a time behind a :class:`~server.queueing.Gate`, since
neither a llama.cpp context nor a model's cache is thread-safe. A generation past the
backend's ``timeout`` is stopped between two tokens (GenerationTimeout, 504).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dataprocess.template import stop_strings

from core.terminator import DONE
from core.workspace import Workspace

from .queueing import Deadline, Gate

BACKENDS = ("llama", "transformers")


class BackendError(RuntimeError):
    """The model cannot be loaded."""


class PromptTooLong(ValueError):
    """The conversation does not fit the model's context window (a 400 for the client)."""


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (DONE / end of turn) or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Backend:
    """Common part: the gate, the deadline, and ``generate`` built on ``stream``."""

    name = "twin"

    def __init__(self, gate: Gate | None = None, timeout: float | None = 120.0):
        self.gate = gate or Gate()
        self.timeout = timeout

    def _pieces(self, messages: list[dict], temperature: float, max_tokens: int, stats: dict) -> Iterator[str]:
        raise NotImplementedError

    def stream(self, messages: list[dict], *, temperature: float = 0.7, max_tokens: int = 64,
               stats: dict | None = None) -> Iterator[str]:
        """Raw generated text pieces; waits for and holds the model while iterating.

        ``stats`` (if given) receives ``finish_reason``, ``prompt_tokens``, ``completion_tokens``.
        """
        stats = {} if stats is None else stats
        stats.update(finish_reason="stop", prompt_tokens=0, completion_tokens=0)
        with self.gate.hold():
            deadline = Deadline(self.timeout)
            pieces = self._pieces(messages, temperature, max_tokens, stats)
            try:
                for piece in pieces:
                    deadline.check()
                    yield piece
            finally:
                pieces.close()

    def generate(self, messages: list[dict], *, temperature: float = 0.7, max_tokens: int = 64) -> Generation:
        """The whole raw reply at once (DONE not yet stripped)."""
        stats: dict = {}
        text = "".join(self.stream(messages, temperature=temperature, max_tokens=max_tokens, stats=stats))
        return Generation(text, stats["finish_reason"], stats["prompt_tokens"], stats["completion_tokens"])


class LlamaCppBackend(Backend):
    """Generation from a GGUF file through llama-cpp-python, with the file's chat template."""

    def __init__(self, model_path: Path, *, gpu_layers: int = 0, threads: int | None = None,
                 context: int = 2048, seed: int = 0, gate: Gate | None = None, timeout: float | None = 120.0):
        super().__init__(gate, timeout)
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

    def _pieces(self, messages, temperature, max_tokens, stats):
        try:
            chunks = self.llm.create_chat_completion(messages=messages, temperature=temperature,
                                                     max_tokens=max_tokens, stop=stop_strings(), stream=True)
            first = next(chunks, None)  # the prompt is evaluated here: a too-long one fails now
        except ValueError as exc:
            raise PromptTooLong(f"the conversation is too long for the model's context: {exc}") from None
        try:
            for chunk in ([first] if first else []):
                yield from self._read(chunk, stats)
            for chunk in chunks:
                yield from self._read(chunk, stats)
        finally:
            chunks.close()
            stats["prompt_tokens"] = max(0, self.llm.n_tokens - stats["completion_tokens"])

    @staticmethod
    def _read(chunk, stats):
        choice = chunk["choices"][0]
        piece = choice.get("delta", {}).get("content")
        if choice.get("finish_reason"):
            stats["finish_reason"] = choice["finish_reason"]
        if piece:
            stats["completion_tokens"] += 1
            yield piece


class TransformersBackend(Backend):
    """The base model with the workspace's LoRA adapter applied (no export needed), on CPU or GPU."""

    def __init__(self, base_path: str | Path, adapter_dir: Path | None = None, *, threads: int | None = None,
                 seed: int = 0, gate: Gate | None = None, timeout: float | None = 120.0):
        super().__init__(gate, timeout)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - both are project dependencies
            raise BackendError(f"the transformers backend needs torch and transformers: {exc}") from None
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        tokenizer_dir = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() \
            else base_path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
            model = AutoModelForCausalLM.from_pretrained(
                str(base_path), dtype=torch.float16 if self.device == "cuda" else torch.float32)
            if adapter_dir is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter_dir))
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load base {base_path} with adapter {adapter_dir}: {exc}") from None
        self.model = model.to(self.device).eval()
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.name = Path(adapter_dir).parent.name + "-adapter" if adapter_dir else Path(base_path).name
        eos = {self.tokenizer.eos_token_id, getattr(model.config, "eos_token_id", None)}
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != self.tokenizer.unk_token_id:
            eos.add(im_end)
        self.stop_ids = {t for t in eos if isinstance(t, int)}
        self.context = getattr(model.config, "max_position_embeddings", 2048)

    def _pieces(self, messages, temperature, max_tokens, stats):
        torch = self.torch
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)
        stats["prompt_tokens"] = ids.shape[1]
        if ids.shape[1] + max_tokens > self.context:
            raise PromptTooLong(f"the conversation ({ids.shape[1]} tokens) is too long for the model's "
                                f"context of {self.context}")
        stats["finish_reason"] = "length"
        out_ids: list[int] = []
        text, past, step_input = "", None, ids
        with torch.no_grad():
            for _ in range(max_tokens):
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1].float()
                if temperature <= 0:
                    token = int(logits.argmax())
                else:
                    probs = torch.softmax(logits / temperature, dim=-1).cpu()
                    token = int(torch.multinomial(probs, 1, generator=self.generator))
                if token in self.stop_ids:
                    stats["finish_reason"] = "stop"
                    return
                out_ids.append(token)
                stats["completion_tokens"] += 1
                new = self.tokenizer.decode(out_ids, skip_special_tokens=True)
                if not new.endswith("\ufffd") and len(new) > len(text):  # wait for whole characters
                    piece, text = new[len(text):], new
                    yield piece
                    if DONE in text:
                        stats["finish_reason"] = "stop"
                        return
                step_input = torch.tensor([[token]], device=self.device)


def auto_workers(threads: int | None, gpu_layers: int) -> int:
    """Workers for batching: one per ``threads`` CPUs (at most 4); one when a GPU does the work."""
    import os

    from export.llama_runtime import default_threads

    if gpu_layers:
        return 1
    return max(1, min(4, (os.cpu_count() or 1) // (threads or default_threads())))


def find_model(workspace: Path) -> Path:
    """The newest ``twin-*.gguf`` in WORKSPACE/model."""
    model_dir = Workspace(Path(workspace)).model_dir
    models = sorted(model_dir.glob("twin-*.gguf"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise BackendError(f"no twin-*.gguf in {model_dir}: run `twin export` first "
                           "(or serve the adapter with --backend transformers)")
    return models[-1]


def open_backend(kind: str = "llama", *, workspace: Path | None = None, model_path: Path | None = None,
                 gpu_layers: int = 0, threads: int | None = None, context: int = 2048, parallel: int = 1,
                 workers: int = 1, gate: Gate | None = None, timeout: float | None = 120.0) -> Backend:
    """Load the backend a command asked for; every expected failure is a one-line BackendError.

    ``parallel`` > 1 or ``workers`` > 1 serves the GGUF with continuous batching
    (server.batching): ``workers`` contexts generating up to ``parallel`` replies each at once.
    """
    if kind == "llama":
        path = model_path or find_model(workspace)
        if parallel > 1 or workers > 1:
            from .batching import BatchedLlamaBackend

            return BatchedLlamaBackend(path, parallel=parallel, workers=workers, gpu_layers=gpu_layers,
                                       threads=threads, context=context, gate=gate, timeout=timeout)
        return LlamaCppBackend(path, gpu_layers=gpu_layers, threads=threads, context=context,
                               gate=gate, timeout=timeout)
    if kind != "transformers":
        raise BackendError(f"unknown backend {kind!r}: choose one of {', '.join(BACKENDS)}")
    if workspace is None:
        raise BackendError("--backend transformers needs --workspace (it loads WORKSPACE/adapter)")
    ws = Workspace(Path(workspace))
    if not (ws.adapter_dir / "adapter_config.json").is_file():
        raise BackendError(f"no adapter in {ws.adapter_dir}: run `twin train` first")
    base = ws.load_settings().get("train", {}).get("base_path")
    if not base:
        from export.errors import ExportError
        from export.merge import adapter_base

        try:
            base = adapter_base(ws.adapter_dir)
        except ExportError as exc:
            raise BackendError(str(exc)) from None
    return TransformersBackend(base, ws.adapter_dir, threads=threads, gate=gate, timeout=timeout)

"""Continuous batching over one llama.cpp context: several replies generated at once.

On a CPU a small model's single-stream decoding leaves most of each step's work unused: one
``llama_decode`` of 8 tokens from 8 conversations costs about 2.5x one token (measured on the
2-core VM: SmolLM2-135M Q8_0, 23 ms vs 60 ms a step). :class:`BatchedLlamaBackend` runs one
scheduler thread that owns the llama.cpp context (so nothing else ever touches it) and, every
step, decodes the next token of every active request plus the prompt tokens of newly admitted
ones in a single batch. Each of the ``parallel`` slots is a llama.cpp sequence that keeps the
tokens of its previous request, so the prompt prefix it shares with the new one (the twin's
system line) is not evaluated again.

``workers`` such contexts (each with its own scheduler thread, all sharing the one copy of the
weights) use several cores without llama.cpp's threads waiting on each other: on the 2-core
VM two single-threaded workers of 4 slots gave 22.8 req/s in-process where one worker of 8
slots gave 10.8 and one 2-threaded context less than one single-threaded one. A new request
goes to the worker with the fewest requests.

Requests are admitted in arrival order up to ``parallel`` at a time; at most
``gate.max_waiting`` more may wait (503 beyond), none longer than ``gate.wait_timeout`` (503).
Each request is sampled by the decoding contract (voice.decoding.Decoding, defaults from
twin.toml or the GGUF) with llama.cpp's own samplers in the contract's order
(:func:`sampler_chain`): the fitted logit biases, the penalties over the reply's last
``penalty_last_n`` tokens, the first-token bans (:func:`ban_first_tokens`), top-k, top-p, min-p,
the temperature, a seeded draw (greedy at temperature 0). A request stops at an
end-of-generation or control token (``<|im_start|>`` would begin another turn), at ``DONE`` or
at ``max_tokens``.

The prompt is tokenized in pieces (voice.backend.prompt_segments): the chat template's
markup with special tokens, each message as plain text, so a message cannot forge a turn.

:class:`LlamaCppBackend` is the same with one context and one slot: one reply at a time
(``twin chat``, ``twin serve --parallel 1 --workers 1``).

The context is made as ``llama_cpp.Llama`` makes its own (flash attention off), so a request
that runs alone gets exactly the reply the one-at-a-time backend gives; requests decoded
together share one KV cache (faster here than one per sequence: 7.9 vs 6.5 req/s) and their
logits can differ in the last bits, so greedy replies under load may differ slightly.
"""
from __future__ import annotations

import codecs
import ctypes
import math
import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Iterator

from dataprocess.template import FALLBACK_CHAT_TEMPLATE

from core.terminator import StyleTokens, is_terminated
from core.settings import REQUEST_TIMEOUT_S

from .backend import DEFAULT_CONTEXT, Backend, BackendError, PromptTooLong, new_stats, prompt_segments
from .decoding import Decoding, first_token_bans, turn_end_text
from .queueing import Deadline, Gate, Overloaded


def sampler_chain(L, n_vocab: int, decoding: Decoding, biases: dict[int, float], seed: int, *, draw: bool = True):
    """llama.cpp's sampler chain for one reply, in the contract's order (voice.decoding): logit
    biases, penalties, then greedy or top-k, top-p, min-p, temperature and the seeded draw
    (``draw=False`` leaves the draw out: the parity test reads the distribution it would draw
    from). The first-token bans act on the logits before the chain (:func:`ban_first_tokens`)."""
    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    samplers = []
    if biases:  # the twin's fitted length and separator biases ([sampling])
        array = (L.llama_logit_bias * len(biases))(*[L.llama_logit_bias(token, bias) for token, bias in biases.items()])
        samplers.append(L.llama_sampler_init_logit_bias(n_vocab, len(biases), array))
    d = decoding
    if d.repeat_penalty != 1 or d.frequency_penalty or d.presence_penalty:
        samplers.append(L.llama_sampler_init_penalties(n_vocab, d.penalty_last_n, d.repeat_penalty, d.frequency_penalty,
                                                       d.presence_penalty))
    if d.greedy:
        if draw:
            samplers.append(L.llama_sampler_init_greedy())
    else:
        if d.top_k > 0:
            samplers.append(L.llama_sampler_init_top_k(d.top_k))
        if d.top_p < 1:
            samplers.append(L.llama_sampler_init_top_p(d.top_p, 1))
        if d.min_p > 0:
            samplers.append(L.llama_sampler_init_min_p(d.min_p, 1))
        samplers.append(L.llama_sampler_init_temp(d.temperature))
        if draw:
            samplers.append(L.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    for sampler in samplers:
        L.llama_sampler_chain_add(chain, sampler)
    return chain


def ban_first_tokens(logits, bans) -> None:
    """The contract's first-token bans on a row of llama.cpp's logits (before the chain: -inf
    stays -inf through the biases and penalties)."""
    for banned in bans:
        logits[banned] = -math.inf

_END = object()


class _Request:
    def __init__(self, tokens: list[int], decoding: Decoding, seed: int):
        self.tokens, self.decoding, self.max_tokens, self.seed = tokens, decoding, decoding.max_tokens, seed
        self.out: queue.Queue = queue.Queue()
        self.cancelled = False
        self.admitted = threading.Event()
        # scheduler-side state
        self.slot = -1
        self.fed = 0            # prompt tokens already in the slot's cache
        self.generated = 0
        self.sampler = None
        # bytes -> text; keeps an incomplete UTF-8 character for the next token, replaces invalid bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""
        self.finish = "length"


class _Slot:
    def __init__(self, seq: int):
        self.seq = seq
        self.tokens: list[int] = []  # the sequence's tokens; the first ``cached`` are in the KV cache
        self.cached = 0
        self.request: _Request | None = None


class BatchedLlamaBackend(Backend):
    """A GGUF served by ``workers`` contexts, each decoding up to ``parallel`` requests together."""

    def __init__(self, model_path: Path, *, parallel: int = 4, workers: int = 1, gpu_layers: int = 0,
                 threads: int | None = None, context: int = DEFAULT_CONTEXT, seed: int = 0, gate: Gate | None = None,
                 timeout: float | None = REQUEST_TIMEOUT_S):
        super().__init__(gate, timeout)
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from voice.llama_runtime import default_threads, open_llama

        model_path = Path(model_path)
        if not model_path.is_file():
            raise BackendError(f"model file not found: {model_path}")
        threads = threads or default_threads()
        try:  # the Llama object gives the model, tokenizer and metadata; its own context stays unused
            self.llm = open_llama(model_path, n_ctx=256, n_batch=64, n_gpu_layers=gpu_layers, n_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"cannot load {model_path} as a GGUF model: {exc}") from None
        self.name, self.metadata = model_path.stem, dict(self.llm.metadata)
        self.parallel, self.context, self.seed = parallel, context, seed
        bos, eos = self.llm.token_bos(), self.llm.token_eos()
        self.formatter = Jinja2ChatFormatter(
            template=self.metadata.get("tokenizer.chat_template") or FALLBACK_CHAT_TEMPLATE,
            eos_token=self.llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llm._model.token_get_text(bos) if bos != -1 else "")
        vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        eog = [t for t in range(llama_cpp.llama_vocab_n_tokens(vocab))
               if llama_cpp.llama_vocab_is_eog(vocab, t) or llama_cpp.llama_vocab_is_control(vocab, t)]
        self.first_banned = first_token_bans(self.plain_tokens, eog)
        tail = turn_end_text(lambda messages: self.formatter(messages=messages).prompt)
        end = self.special_tokens(tail) if tail.strip() else []
        end_id = end[0] if end and end[0] in set(eog) else (eos if eos != -1 else None)
        self.style_tokens = StyleTokens.find(self.plain_tokens, end_id)
        self._lock = threading.Lock()  # admission: choosing a worker, counting the queue
        self._count = 0
        self.workers = [_Worker(llama_cpp, self.llm._model.model, parallel, context, threads, n, self.first_banned,
                                self.style_tokens) for n in range(max(1, workers))]

    def plain_tokens(self, text: str) -> list[int]:
        """``text`` as plain-text tokens (no BOS, control tokens spelt out as text)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def special_tokens(self, text: str) -> list[int]:
        """``text`` with the template's markup read as its special tokens."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []

    # -- the caller's side (waitress threads) ----------------------------------------------

    def tokenize_prompt(self, messages: list[dict]) -> list[int]:
        """The prompt's tokens: template markup with special tokens, message contents as plain text."""
        rendered = {}

        def render(marked):
            rendered["out"] = self.formatter(messages=marked)
            return rendered["out"].prompt

        tokens: list[int] = []
        for text, content in prompt_segments(render, messages):
            tokens += self.llm.tokenize(text.encode("utf-8"), add_bos=not tokens and not rendered["out"].added_special,
                                        special=not content)
        return tokens

    def stream(self, messages: list[dict], decoding: Decoding | None = None, *, stats: dict | None = None,
               **changes) -> Iterator[str]:
        decoding = (decoding or Decoding()).with_changes(**changes)
        max_tokens = decoding.max_tokens
        stats = new_stats(stats)
        tokens = self.tokenize_prompt(messages)
        if len(tokens) + max_tokens > self.context:
            raise PromptTooLong(f"the conversation ({len(tokens)} tokens) is too long for the model's "
                                f"context of {self.context}")
        stats["prompt_tokens"] = len(tokens)
        with self._lock:
            loads = [(w.load(), n) for n, w in enumerate(self.workers)]
            waiting = sum(len(w.waiting) for w in self.workers)
            if min(loads)[0] >= self.parallel and waiting >= self.gate.max_waiting:
                raise Overloaded(f"server busy: {waiting} requests already queued; retry shortly")
            self._count += 1
            request = _Request(tokens, decoding, self.seed + self._count if decoding.seed is None else decoding.seed)
            self.workers[min(loads)[1]].submit(request)
        return self._drain(request, stats)

    def _drain(self, request: _Request, stats: dict) -> Iterator[str]:
        try:
            if not request.admitted.wait(self.gate.wait_timeout):
                raise Overloaded(f"server busy: waited {self.gate.wait_timeout:g} s for the model; retry shortly")
            deadline = Deadline(self.timeout)
            while True:
                wait = None if deadline.at is None else max(0.0, deadline.at - time.monotonic())
                try:
                    item = request.out.get(timeout=wait)
                except queue.Empty:
                    item = None
                deadline.check()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                if item:
                    yield item
        finally:
            request.cancelled = True
            stats["completion_tokens"] = request.generated
            stats["finish_reason"] = request.finish

    def queue_depth(self) -> int:
        return sum(len(w.waiting) for w in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


class _Worker:
    """One llama.cpp context and the scheduler thread that alone uses it."""

    def __init__(self, L, model, parallel: int, context: int, threads: int, number: int, first_banned=(),
                 style_tokens: StyleTokens | None = None):
        self.L = L
        self.first_banned = list(first_banned)
        self.style_tokens = style_tokens or StyleTokens((), ())
        params = L.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = context * parallel, 512, 512
        params.n_seq_max, params.kv_unified, params.no_perf = parallel, True, True
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as llama_cpp.Llama: the same numbers
        self.ctx = L.llama_init_from_model(model, params)
        if not self.ctx:
            raise BackendError(f"llama.cpp could not make a context of {context * parallel} tokens")
        self.vocab = L.llama_model_get_vocab(model)
        self.memory = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(512, 0, 1)
        self.slots = [_Slot(i) for i in range(parallel)]
        self.waiting: deque[_Request] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"twin-batcher-{number}", daemon=True)
        self._thread.start()

    def load(self) -> int:
        """Requests generating or waiting here (cancelled ones about to leave not counted)."""
        return sum(s.request is not None and not s.request.cancelled for s in self.slots) + len(self.waiting)

    def submit(self, request: _Request) -> None:
        with self._lock:
            self.waiting.append(request)
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=10)

    # -- the scheduler thread (the only one that touches the context) -----------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self.waiting and not any(s.request for s in self.slots):
                    self._lock.wait()
                if self._closed:
                    return
                try:
                    self._admit()
                except Exception as exc:  # noqa: BLE001 - never let the scheduler die
                    self._fail(exc)
                    continue
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - fail the active requests, start clean
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.L.llama_memory_clear(self.memory, True)
        for slot in self.slots:
            if slot.request is not None:
                slot.request.out.put(exc)
                self._release(slot)
            slot.tokens, slot.cached = [], 0

    def _admit(self) -> None:
        for slot in self.slots:
            while slot.request is None and self.waiting:
                request = self.waiting.popleft()
                if request.cancelled:
                    continue
                common = 0  # prompt prefix already in this slot's cache (the last token is always evaluated)
                for a, b in zip(slot.tokens[:slot.cached], request.tokens[:-1]):
                    if a != b:
                        break
                    common += 1
                self.L.llama_memory_seq_rm(self.memory, slot.seq, common, -1)
                slot.tokens, slot.cached = slot.tokens[:common], common
                request.fed, request.slot = common, slot.seq
                request.sampler = self._sampler(request)
                slot.request = request
                request.admitted.set()

    def _sampler(self, request: _Request):
        return sampler_chain(self.L, self.L.llama_vocab_n_tokens(self.vocab), request.decoding,
                             request.decoding.biases(self.style_tokens), request.seed)

    def _step(self) -> None:
        """One llama_decode: prompt tokens of new requests and the last token of the others."""
        batch, n, room = self.batch, 0, 512
        rows: list[tuple[_Slot, int]] = []  # (slot, batch index whose logits are sampled)
        fed: list[_Slot] = []

        def add(token: int, pos: int, seq: int, logits: bool) -> None:
            nonlocal n
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, pos, 1
            batch.seq_id[n][0], batch.logits[n] = seq, 1 if logits else 0
            n += 1

        for slot in self.slots:
            request = slot.request
            if request is None or room <= 0:
                continue
            if request.cancelled:
                self._release(slot)
                continue
            if request.fed < len(request.tokens):  # prompt (in chunks of the room left)
                take = request.tokens[request.fed:request.fed + room]
                for j, token in enumerate(take):
                    last = request.fed + j == len(request.tokens) - 1
                    if last:
                        rows.append((slot, n))
                    add(token, request.fed + j, slot.seq, last)
                request.fed += len(take)
                slot.tokens = request.tokens[:request.fed]
                room -= len(take)
            else:  # the token sampled last step
                rows.append((slot, n))
                add(slot.tokens[-1], len(slot.tokens) - 1, slot.seq, True)
                room -= 1
            fed.append(slot)
        if n == 0:
            return
        batch.n_tokens = n
        status = self.L.llama_decode(self.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed ({status})")
        for slot in fed:
            slot.cached = len(slot.tokens)
        for slot, index in rows:
            self._sample(slot, index)

    def _sample(self, slot: _Slot, index: int) -> None:
        L, request = self.L, slot.request
        if request.generated == 0 and self.first_banned:  # no reply may end before it begins
            ban_first_tokens(L.llama_get_logits_ith(self.ctx, index), self.first_banned)
        token = L.llama_sampler_sample(request.sampler, self.ctx, index)
        if L.llama_vocab_is_eog(self.vocab, token) or L.llama_vocab_is_control(self.vocab, token):
            # the end of the turn, or a control token that would start another one (<|im_start|>)
            request.finish = "stop"
            return self._finish(slot)
        slot.tokens.append(token)  # evaluated in the next step
        request.generated += 1
        buf = ctypes.create_string_buffer(64)
        size = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if size < 0:  # a piece longer than the buffer: llama.cpp says how long, ask again
            buf = ctypes.create_string_buffer(-size)
            size = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        piece = request.decoder.decode(buf.raw[:max(size, 0)])
        if piece:
            request.text += piece
            request.out.put(piece)
        if is_terminated(request.text):
            request.finish = "stop"
            return self._finish(slot)
        if request.generated >= request.max_tokens:
            request.finish = "length"
            return self._finish(slot)
        return None

    def _finish(self, slot: _Slot) -> None:
        slot.request.out.put(_END)
        self._release(slot)

    def _release(self, slot: _Slot) -> None:
        request = slot.request
        if request is not None and request.sampler is not None:
            self.L.llama_sampler_free(request.sampler)
            request.sampler = None
        slot.request = None


class LlamaCppBackend(BatchedLlamaBackend):
    """A GGUF served one reply at a time: one context, one slot (``twin chat``, ``--parallel 1``)."""

    def __init__(self, model_path: Path, *, gpu_layers: int = 0, threads: int | None = None,
                 context: int = DEFAULT_CONTEXT,
                 seed: int = 0, gate: Gate | None = None, timeout: float | None = REQUEST_TIMEOUT_S):
        super().__init__(model_path, parallel=1, workers=1, gpu_layers=gpu_layers, threads=threads,
                         context=context, seed=seed, gate=gate, timeout=timeout)

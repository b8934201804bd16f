"""From raw generated text to what the user sees: the terminator cut off, streamed or whole.

The model ends a reply with `` DONE`` (dataprocess.template). llama.cpp stops on it, but a
stream can still carry it split over tokens (``" DO"`` + ``"NE"``), and the transformers
backend stops only after it has appeared. :class:`TerminatorFilter` holds back the tail of a
stream for as long as it could still be the start of the terminator (or whitespace before it),
so no client ever sees ``DONE`` or a piece of it, and what it emits adds up to exactly
``strip_terminator(full_text)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from core.terminator import DONE, split_messages, strip_terminator

_WORD = re.compile(r"\w")
_CONFIRMED = re.compile(r"\bDONE(?=\W)")  # DONE followed by a non-word character: surely the terminator


class TerminatorFilter:
    """Feed raw pieces in order; get the visible text out, never any part of DONE."""

    def __init__(self) -> None:
        self.raw = ""
        self.sent = 0        # characters of ``raw`` already emitted
        self.done = False    # the terminator was seen: ignore everything after

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        self.raw += piece
        found = _CONFIRMED.search(self.raw)
        if found:
            self.done = True
            return self._emit(len(self.raw[:found.start()].rstrip()))
        end = len(self.raw)
        for k in range(min(len(DONE), len(self.raw)), 0, -1):
            before = self.raw[-k - 1] if len(self.raw) > k else ""
            if DONE.startswith(self.raw[-k:]) and not (before and _WORD.match(before)):
                end -= k  # could be the terminator's beginning: wait for the next piece
                break
        return self._emit(len(self.raw[:end].rstrip()))

    def finish(self) -> str:
        """The rest of the visible text once the stream has ended."""
        final = strip_terminator(self.raw)
        lead = len(self.raw) - len(self.raw.lstrip())
        already = max(0, self.sent - lead)
        self.done = True
        return final[already:]

    def _emit(self, end: int) -> str:
        start = max(self.sent, len(self.raw) - len(self.raw.lstrip()))
        if end <= start:
            return ""
        self.sent = end
        return self.raw[start:end]


@dataclass
class Reply:
    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def messages(self) -> list[str]:
        return split_messages(self.text)


def stream_visible(backend, messages: list[dict], *, temperature: float, max_tokens: int,
                   stats: dict) -> Iterator[str]:
    """The visible reply as it is generated (empty pieces dropped)."""
    filt = TerminatorFilter()
    raw = backend.stream(messages, temperature=temperature, max_tokens=max_tokens, stats=stats)
    try:
        for piece in raw:
            out = filt.feed(piece)
            if out:
                yield out
            if filt.done:
                stats["finish_reason"] = "stop"
                break
    finally:
        raw.close()
    rest = filt.finish()
    if rest:
        yield rest


def complete(backend, messages: list[dict], *, temperature: float = 0.7, max_tokens: int = 64) -> Reply:
    """The whole visible reply."""
    stats: dict = {}
    text = "".join(stream_visible(backend, messages, temperature=temperature, max_tokens=max_tokens, stats=stats))
    return Reply(text, stats.get("finish_reason", "stop"), stats.get("prompt_tokens", 0),
                 stats.get("completion_tokens", 0))

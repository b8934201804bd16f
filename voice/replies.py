"""From raw generated text to what the user sees: the terminator and stop strings cut off,
streamed or whole, and never an empty reply (no Flask here).

The model ends a reply with `` DONE`` (core.terminator). A stream can carry it split over
tokens (``" DO"`` + ``"NE"``); :class:`TerminatorFilter` holds back the tail of a stream for as
long as it could still be the start of the terminator (or whitespace before it), so no client
ever sees ``DONE`` or a piece of it, and what it emits adds up to exactly
``strip_terminator(full_text)``. :class:`StopFilter` does the same for a request's ``stop``
strings (OpenAI's semantics: the reply ends before the first one, which is not shown).

A reply that is empty once cleaned is generated again with another seed, at most
``voice.decoding.TRIES`` times in all (nothing has been sent yet, so a stream retries too); the
backends already forbid the terminator and end-of-turn tokens as the first token. Every way of
talking to the twin gets its replies here: the server's routes, ``twin chat``, the bots, and
``twin eval`` on the exported GGUF.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from core.terminator import DONE, find_terminator, split_messages, strip_terminator

from .decoding import TRIES, Decoding
from .queueing import Overloaded

_WORD = re.compile(r"\w")


class EmptyReply(Overloaded):
    """Every try produced an empty reply (503: the client may ask again)."""

    def __init__(self, tries: int):
        super().__init__(f"the twin produced no reply in {tries} tries; send the message again", 503, 1)


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
        found = find_terminator(self.raw, final=False)
        if found is not None:
            self.done = True
            return self._emit(len(self.raw[:found].rstrip()))
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


class StopFilter:
    """Visible text in, text out up to (not including) the first of ``stops`` (a request's own
    stop strings; DONE is the :class:`TerminatorFilter`'s)."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.text = ""
        self.sent = 0
        self.done = False

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        self.text += piece
        found = [at for at in (self.text.find(s) for s in self.stops) if at >= 0]
        if found:
            self.done = True
            return self._emit(min(found))
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
        return self._emit(len(self.text) - hold)

    def finish(self) -> str:
        return "" if self.done else self._emit(len(self.text))

    def _emit(self, end: int) -> str:
        out = self.text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return out


@dataclass
class Reply:
    """A finished reply: its visible text and how it ended."""

    text: str
    finish_reason: str          # "stop": ended by itself (end of turn, DONE, a stop string); "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tries: int = 1              # 1 + the retries an empty reply needed

    @property
    def messages(self) -> list[str]:
        return split_messages(self.text)

    @property
    def terminated(self) -> bool:
        """Whether the reply ended by itself before the token cap."""
        return self.finish_reason == "stop"


def visible_text(raw: str, stops: tuple[str, ...] = ()) -> tuple[str, bool]:
    """What the filters above let through of a whole raw reply, and whether the terminator or a
    stop string ended it: what a client of the server sees of the same generation."""
    ended = find_terminator(raw) is not None
    text = strip_terminator(raw)
    cut = [at for at in (text.find(s) for s in stops if s) if at >= 0]
    if cut:
        text, ended = text[:min(cut)], True
    return text.strip(), ended


def _one_try(backend, messages: list[dict], decoding: Decoding, stats: dict) -> Iterator[str]:
    terminator, stop = TerminatorFilter(), StopFilter(decoding.stop)
    raw = backend.stream(messages, decoding, stats=stats)
    try:
        for piece in raw:
            out = stop.feed(terminator.feed(piece))
            if out:
                yield out
            if terminator.done or stop.done:
                stats["finish_reason"] = "stop"
                break
    finally:
        raw.close()
    rest = stop.feed(terminator.finish()) + stop.finish()
    if rest:
        yield rest


def stream_visible(backend, messages: list[dict], decoding: Decoding | None = None, *, stats: dict,
                   tries: int = TRIES, **changes) -> Iterator[str]:
    """The visible reply as it is generated (empty pieces dropped; never empty as a whole).

    ``stats`` gets the ``finish_reason`` and token counts of the try that was sent, and
    ``tries``.
    """
    decoding = (decoding or Decoding()).with_changes(**changes)
    for attempt in range(tries):
        shown, held = False, ""
        for piece in _one_try(backend, messages, decoding.retry(attempt), stats):
            if not shown:  # hold the start back until it holds a message (not just " | ")
                held += piece
                shown = bool(split_messages(held))
                piece = held if shown else ""
            if piece:
                yield piece
        stats["tries"] = attempt + 1
        if shown:
            return
    raise EmptyReply(tries)


def complete(backend, messages: list[dict], decoding: Decoding | None = None, **changes) -> Reply:
    """The whole visible reply."""
    stats: dict = {}
    text = "".join(stream_visible(backend, messages, decoding, stats=stats, **changes))
    return Reply(text.strip(), stats.get("finish_reason", "stop"), stats.get("prompt_tokens", 0),
                 stats.get("completion_tokens", 0), stats.get("tries", 1))

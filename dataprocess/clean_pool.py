"""Cleaning message texts on a second CPU core while the first keeps reading (``twin process``).

The rules' cleaning (:func:`dataprocess.clean.clean_text`) is a pure function of each text and
costs about half as much as reading the message; on a long history the two can overlap. Texts
go to one worker process in batches, one batch in flight (memory stays bounded and the reader is
never far ahead), and results come back in the order the texts went in.

A short history never starts the worker (starting it costs more than it saves), nor does a
machine with one CPU: the texts are then cleaned where they are read, by the same function.
A worker that dies gives :class:`~dataprocess.errors.BackgroundWorkError` (one line, exit 1).
"""
from __future__ import annotations

import marshal
import multiprocessing
from collections import deque
from typing import Generic, Iterator, TypeVar

from core.settings import Rules

from .clean import clean_text
from .errors import BackgroundWorkError
from .forked import can_fork, usable_cores

Meta = TypeVar("Meta")

BATCH = 4096          # texts sent to the worker at a time
START_AFTER = 32_768  # texts cleaned in place before a worker is worth starting


def _worker(connection, flags: dict) -> None:
    """The worker's loop: a batch of texts in, the cleaned batch out, until an empty message."""
    while True:
        data = connection.recv_bytes()
        if not data:
            break
        connection.send_bytes(marshal.dumps([clean_text(text, **flags) for text in marshal.loads(data)]))
    connection.close()


def _worker_died() -> BackgroundWorkError:
    return BackgroundWorkError("the process cleaning the messages ended unexpectedly; nothing was written "
                               "(run the same command again)")


def cleaning_flags(rules: Rules) -> dict:
    """clean_text's switches as the rules set them."""
    return dict(lowercase=rules.lowercase, urls=rules.replace_urls, emoji=rules.strip_emoji,
                repeats=rules.squash_repeats, scrub=rules.scrub_personal_data)


class TextCleaner(Generic[Meta]):
    """Cleans texts in order: :meth:`add` a text with whatever goes with it, get back the
    (cleaned text, that thing) pairs that are ready; :meth:`drain` the rest at the end.

    The worker is a plain process on a pipe, batches are lists of strings in ``marshal`` form
    (the fastest serialisation of them in the standard library; no executor threads in the
    reading process to compete with it for the interpreter lock)."""

    def __init__(self, rules: Rules, *, start_after: int = START_AFTER, batch: int = BATCH,
                 workers: int | None = None) -> None:
        self._flags = cleaning_flags(rules)
        self._start_after, self._batch = start_after, batch
        self._parallel = (workers if workers is not None else usable_cores()) > 1
        self._seen = 0
        self._process = None
        self._connection = None
        self._texts: list[str] = []
        self._metas: list[Meta] = []
        self._in_flight: deque[list[Meta]] = deque()

    @property
    def started_worker(self) -> bool:
        return self._process is not None

    def add(self, text: str, meta: Meta) -> list[tuple[str, Meta]]:
        if self._connection is None:
            self._seen += 1
            if not self._parallel or self._seen <= self._start_after:
                return [(clean_text(text, **self._flags), meta)]
            self._start()
        self._texts.append(text)
        self._metas.append(meta)
        if len(self._texts) < self._batch:
            return []
        # The previous batch is taken back before this one goes: with both pipe directions
        # full, each side would wait for the other for ever. The worker cleans a batch while
        # this process reads the messages of the next: that is the overlap.
        ready = self._take(keep=0)
        self._send()
        return ready

    def drain(self) -> Iterator[tuple[str, Meta]]:
        if self._texts:
            self._send()
        yield from self._take(keep=0)

    def _start(self) -> None:
        # fork where the platform has it: the worker starts in milliseconds with the code loaded
        context = multiprocessing.get_context("fork" if can_fork() else None)
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_worker, args=(theirs, self._flags), daemon=True)
        self._process.start()
        theirs.close()

    def _send(self) -> None:
        try:
            self._connection.send_bytes(marshal.dumps(self._texts))
        except OSError:  # a broken pipe: the worker is gone
            raise _worker_died() from None
        self._in_flight.append(self._metas)
        self._texts, self._metas = [], []

    def _take(self, keep: int) -> list[tuple[str, Meta]]:
        ready: list[tuple[str, Meta]] = []
        while len(self._in_flight) > keep:
            try:
                cleaned = marshal.loads(self._connection.recv_bytes())
            except (EOFError, OSError):
                raise _worker_died() from None
            ready.extend(zip(cleaned, self._in_flight.popleft()))
        return ready

    def close(self) -> None:
        if self._process is None:
            return
        try:
            self._connection.send_bytes(b"")
        except OSError:
            pass
        self._connection.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._process = self._connection = None

    def __enter__(self) -> "TextCleaner[Meta]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

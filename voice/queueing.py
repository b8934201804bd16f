"""Request queueing in front of a model that runs one generation at a time.

A llama.cpp context (and a transformers model with its cache) is not thread-safe, so one
request generates while the others wait on a lock. The wait is bounded twice: at most
``max_waiting`` requests may queue (the next one is turned away at once, 503), and none waits
longer than ``wait_timeout`` seconds (503). A generation that runs past its own deadline is
cut off by the backend (504). All three are :class:`Overloaded` errors with an HTTP status and
a ``Retry-After`` hint, turned into JSON by the app.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from core.settings import REQUEST_TIMEOUT_S


class Overloaded(RuntimeError):
    """The server cannot answer this request now; ``status`` is 503 or 504."""

    def __init__(self, message: str, status: int = 503, retry_after: int = 1):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class GenerationTimeout(Overloaded):
    def __init__(self, seconds: float):
        super().__init__(f"generation took longer than {seconds:g} s and was stopped", 504, 5)


class Gate:
    """One generation at a time, with a bounded queue and a bounded wait."""

    def __init__(self, max_waiting: int = 16, wait_timeout: float = REQUEST_TIMEOUT_S):
        self.max_waiting, self.wait_timeout = max_waiting, wait_timeout
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Wait for the model (bounded) and hold it for the ``with`` block."""
        if not self._lock.acquire(blocking=False):
            with self._count:
                if self._waiting >= self.max_waiting:
                    raise Overloaded(f"server busy: {self._waiting} requests already queued; retry shortly")
                self._waiting += 1
            try:
                acquired = self._lock.acquire(timeout=self.wait_timeout)
            finally:
                with self._count:
                    self._waiting -= 1
            if not acquired:
                raise Overloaded(f"server busy: waited {self.wait_timeout:g} s for the model; retry shortly")
        try:
            yield
        finally:
            self._lock.release()


class Deadline:
    """The moment a generation must stop by; ``check()`` raises :class:`GenerationTimeout` after it."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise GenerationTimeout(self.seconds)

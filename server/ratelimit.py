"""Per-caller rate limiting: a token bucket for each API key (or client address without a key).

``RateLimiter.parse("60/min")`` allows bursts of 60 requests and refills 60 per minute. A
refused request gets the seconds until the next token, for a 429 with ``Retry-After``. At most
``max_callers`` buckets are kept (least recently used dropped: a ``cachetools.LRUCache``), so
memory stays bounded.
"""
from __future__ import annotations

import math
import re
import threading
import time

from cachetools import LRUCache

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


class RateLimiter:
    def __init__(self, requests: int, per_seconds: float, max_callers: int = 10000, clock=time.monotonic):
        if requests < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs at least 1 request per period")
        self.capacity, self.rate = float(requests), requests / per_seconds
        self.max_callers = max_callers
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(max_callers)

    @classmethod
    def parse(cls, spec: str | None, **kwargs) -> "RateLimiter | None":
        """``"N/min"`` (or ``/s``, ``/hour``); ``None``, ``"off"`` or ``"0"`` disables limiting."""
        if spec is None or spec.strip().lower() in ("off", "none", "0", "0/min", ""):
            return None
        match = _SPEC.match(spec.lower())
        if not match or match.group(2).rstrip("s") not in _UNITS and match.group(2) not in _UNITS:
            raise ValueError(f"rate limit {spec!r} is not like 60/min, 5/s or 1000/hour (or 'off')")
        unit = match.group(2) if match.group(2) in _UNITS else match.group(2).rstrip("s")
        return cls(int(match.group(1)), _UNITS[unit], **kwargs)

    def check(self, caller: str) -> float:
        """Take a token for ``caller``: 0 when allowed, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(caller, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[caller] = (tokens, now)
        return wait

    def peek(self, caller: str) -> float:
        """Like :meth:`check` without taking a token: 0 when ``caller`` has one left."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> int:
        return max(1, math.ceil(wait))

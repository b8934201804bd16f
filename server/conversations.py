"""Server-side conversation history for ``/generate`` with ``conversation_id``, bounded in memory.

An LRU of at most ``max_conversations`` conversations, each keeping its last ``max_turns``
messages (the contact's and the twin's), dropped after ``ttl`` seconds without use. Ids are
namespaced by the caller (API key or client address), so one caller cannot read another's
conversation by guessing its id. Thread-safe. The bounded map itself is ``cachetools.TTLCache``
(least recently used evicted, an entry expiring ``ttl`` seconds after it was last written).
"""
from __future__ import annotations

import threading
import time
from collections import deque

from cachetools import TTLCache


class ConversationStore:
    def __init__(self, max_conversations: int = 1000, max_turns: int = 16, ttl: float = 3600.0,
                 clock=time.monotonic):
        self.max_conversations, self.max_turns, self.ttl = max_conversations, max_turns, ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: TTLCache[tuple[str, str], deque] = TTLCache(max_conversations, ttl, timer=clock)

    def __len__(self) -> int:
        with self._lock:
            self._items.expire()
            return len(self._items)

    def history(self, owner: str, conversation_id: str) -> list[tuple[str, str]]:
        """The conversation's ``(role, text)`` turns, oldest first; empty when new or expired."""
        with self._lock:
            return list(self._items.get((owner, conversation_id), ()))

    def append(self, owner: str, conversation_id: str, *turns: tuple[str, str]) -> None:
        """Add turns (and keep only the last ``max_turns``); evicts the least recently used."""
        key = (owner, conversation_id)
        with self._lock:
            kept = self._items.pop(key, None) or deque(maxlen=self.max_turns)
            kept.extend(turns)
            self._items[key] = kept  # written again: its time to live starts over

    def reset(self, owner: str, conversation_id: str) -> None:
        with self._lock:
            self._items.pop((owner, conversation_id), None)

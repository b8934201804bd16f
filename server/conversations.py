"""Server-side conversation history for ``/generate`` with ``conversation_id``, bounded in memory.

An LRU of at most ``max_conversations`` conversations, each keeping its last ``max_turns``
messages (the contact's and the twin's), dropped after ``ttl`` seconds without use. Ids are
namespaced by the caller (API key or client address), so one caller cannot read another's
conversation by guessing its id. Thread-safe.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class ConversationStore:
    def __init__(self, max_conversations: int = 1000, max_turns: int = 16, ttl: float = 3600.0,
                 clock=time.monotonic):
        self.max_conversations, self.max_turns, self.ttl = max_conversations, max_turns, ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], tuple[float, deque]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def history(self, owner: str, conversation_id: str) -> list[tuple[str, str]]:
        """The conversation's ``(role, text)`` turns, oldest first; empty when new or expired."""
        with self._lock:
            self._expire()
            entry = self._items.get((owner, conversation_id))
            return list(entry[1]) if entry else []

    def append(self, owner: str, conversation_id: str, *turns: tuple[str, str]) -> None:
        """Add turns (and keep only the last ``max_turns``); evicts the least recently used."""
        key = (owner, conversation_id)
        with self._lock:
            self._expire()
            entry = self._items.pop(key, None)
            kept = entry[1] if entry else deque(maxlen=self.max_turns)
            kept.extend(turns)
            self._items[key] = (self._clock(), kept)
            while len(self._items) > self.max_conversations:
                self._items.popitem(last=False)

    def reset(self, owner: str, conversation_id: str) -> None:
        with self._lock:
            self._items.pop((owner, conversation_id), None)

    def _expire(self) -> None:
        now = self._clock()
        while self._items:
            key, (used, _) = next(iter(self._items.items()))
            if now - used <= self.ttl:
                break
            del self._items[key]

"""The server's own record of the replies it produced, by id, so ``POST /feedback`` can rate a
reply without the client sending its text (no Flask here).

Every reply (``/generate``, ``/v1/chat/completions``, streamed or not) gets an unguessable id;
the record keeps what the model saw (the context turns and the incoming turn, already cleaned
by the data rules) and what it said, for the caller that asked (API key name or client
address), so one caller cannot rate another's replies. The log lives in memory only, bounded
(``max_records``, least recently used dropped; ``ttl`` seconds after it was added: a
``cachetools.TTLCache``): nothing of a conversation is written to disk unless the reply is rated.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from cachetools import TTLCache


@dataclass(frozen=True)
class ReplyRecord:
    id: str
    owner: str
    context: tuple[tuple[str, str], ...]
    incoming: str
    reply: str
    conversation_id: str | None = None


def new_reply_id(prefix: str = "reply-") -> str:
    return prefix + secrets.token_hex(12)


class ReplyLog:
    def __init__(self, max_records: int = 10000, ttl: float = 24 * 3600.0, clock=time.monotonic):
        self.max_records, self.ttl = max_records, ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: TTLCache[str, ReplyRecord] = TTLCache(max_records, ttl, timer=clock)

    def __len__(self) -> int:
        with self._lock:
            self._items.expire()
            return len(self._items)

    def add(self, record: ReplyRecord) -> None:
        with self._lock:
            self._items[record.id] = record

    def get(self, owner: str, reply_id: str) -> ReplyRecord | None:
        """The record of ``reply_id`` if ``owner`` was the one who asked for it."""
        with self._lock:
            record = self._items.get(reply_id)
        if record is None or not secrets.compare_digest(record.owner.encode(), owner.encode()):
            return None
        return record

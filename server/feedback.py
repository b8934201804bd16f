"""Ratings on the twin's replies (``POST /feedback``), appended to SQLite.

The table and the reading side (:func:`dataprocess.feedback.good_replies`, used by
``twin process --feedback``) live in ``dataprocess.feedback``. The database runs in WAL mode
and every call opens its own connection, so waitress's threads can write at once.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from dataprocess.feedback import FEEDBACK_FILE, SCHEMA, connect, good_replies

__all__ = ["FEEDBACK_FILE", "FeedbackStore", "good_replies"]


class FeedbackStore:
    """Appends ratings to ``path`` (created with its folder on first use)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)

    def add(self, prompt: list[dict], reply: str, rating: int, conversation_id: str | None = None) -> int:
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        with connect(self.path) as conn:
            cur = conn.execute(
                "INSERT INTO feedback (created, conversation_id, prompt, reply, rating) VALUES (?, ?, ?, ?, ?)",
                (time.time(), conversation_id, json.dumps(prompt, ensure_ascii=False), reply, rating))
            return int(cur.lastrowid)

    def count(self) -> int:
        with connect(self.path) as conn:
            return conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]

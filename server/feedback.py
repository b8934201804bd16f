"""Ratings on the twin's replies (``POST /feedback``), kept in SQLite, and the good ones as training data.

Each row is the prompt exactly as the model saw it (system line, earlier turns, the contact's
message: dataprocess.template.prompt_messages), the reply, and a rating of +1 or -1. The
database runs in WAL mode and every call opens its own connection, so waitress's threads
can write at once. :func:`good_replies` turns the replies rated up (more ups than downs for
the same prompt and reply) into records of the shape dataprocess writes to train.jsonl;
``twin process --feedback`` folds them in.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator

from dataprocess.template import completion_text, strip_terminator

FEEDBACK_FILE = "feedback.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    conversation_id TEXT,
    prompt TEXT NOT NULL,      -- JSON list of {"role", "content"} messages, system line first
    reply TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1))
)
"""


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=10.0)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


class FeedbackStore:
    """Appends ratings to ``path`` (created with its folder on first use)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _connect(self.path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    def add(self, prompt: list[dict], reply: str, rating: int, conversation_id: str | None = None) -> int:
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        with _connect(self.path) as conn:
            cur = conn.execute(
                "INSERT INTO feedback (created, conversation_id, prompt, reply, rating) VALUES (?, ?, ?, ?, ?)",
                (time.time(), conversation_id, json.dumps(prompt, ensure_ascii=False), reply, rating))
            return int(cur.lastrowid)

    def count(self) -> int:
        with _connect(self.path) as conn:
            return conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]


def good_replies(db_path: Path | str) -> list[dict]:
    """Replies rated up on balance, as prompt/completion training records (oldest first).

    ``{"prompt": [...messages...], "completion": [{"role": "assistant", "content": "reply DONE"}],
    "conversation": "feedback#<id>", "source": "feedback"}``; an absent database gives ``[]``.
    """
    path = Path(db_path)
    if not path.is_file():
        return []
    with _connect(path) as conn:
        rows = conn.execute(
            "SELECT MIN(id), prompt, reply FROM feedback GROUP BY prompt, reply "
            "HAVING SUM(rating) > 0 ORDER BY MIN(id)").fetchall()
    records = []
    for row_id, prompt, reply in rows:
        reply = strip_terminator(reply)
        if not reply:
            continue
        records.append({
            "prompt": json.loads(prompt),
            "completion": [{"role": "assistant", "content": completion_text(reply)}],
            "conversation": f"feedback#{row_id}",
            "source": "feedback",
        })
    return records

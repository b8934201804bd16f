"""The feedback database's format, and the replies rated up as training data.

The server (``server.feedback.FeedbackStore``) appends ratings of the twin's replies to
WORKSPACE/feedback.sqlite; ``twin process --feedback`` reads the ones rated up back with
:func:`good_replies`, in the record shape of train.jsonl. The table is defined here once.
Each row is the prompt exactly as the model saw it (system line, earlier turns, the contact's
message), the reply, and a rating of +1 or -1.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Iterator

from core.terminator import completion_text, strip_terminator

FEEDBACK_FILE = "feedback.sqlite"

SCHEMA = """
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
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=10.0)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def good_replies(db_path: Path | str) -> list[dict]:
    """Replies rated up on balance, as prompt/completion training records (oldest first).

    ``{"prompt": [...messages...], "completion": [{"role": "assistant", "content": "reply DONE"}],
    "conversation": "feedback#<id>", "source": "feedback"}``; an absent database gives ``[]``.
    """
    path = Path(db_path)
    if not path.is_file():
        return []
    with connect(path) as conn:
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

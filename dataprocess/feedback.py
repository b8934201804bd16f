"""The feedback database: ratings of the twin's replies, and the ones rated up as training data.

``twin serve`` keeps a record of every reply it produced (server.reply_log); ``POST /feedback``
names a reply by its id and a rating, and the server copies *its own* record of that exchange
here (:class:`FeedbackStore`): the turns as the server cleaned them, the incoming message and
the reply. A client never supplies the text, so nobody can put words in the twin's mouth.

``twin process --feedback`` (off by default) reads the replies rated up back with
:func:`good_replies`: each goes through the same cleaning and scrubbing as an export
(``clean_message`` with the workspace's rules), is cut to context and rendered like any
training example (dataprocess.live_prompt), and at most ``MAX_FEEDBACK_EXAMPLES`` (the newest)
are used. Rows of the ``feedback`` table older twins wrote (text a client could forge) are
never read.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator, Sequence

from core.artifacts import FEEDBACK_FILE
from core.settings import DEFAULT_PERSONA, Rules
from core.terminator import completion_text, strip_terminator

from .conversations import clean_message
from .live_prompt import LivePrompt
from .memory import Memory

__all__ = ["FEEDBACK_FILE", "FeedbackStore", "MAX_FEEDBACK_EXAMPLES", "good_replies"]

MAX_FEEDBACK_EXAMPLES = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    reply_id TEXT PRIMARY KEY,      -- the id the server gave the reply
    created REAL NOT NULL,          -- when it was (last) rated
    conversation_id TEXT,
    context TEXT NOT NULL,          -- JSON list of [role, text]: the earlier turns the model saw
    incoming TEXT NOT NULL,         -- the contact's turn the reply answers (as the model saw it)
    reply TEXT NOT NULL,            -- the twin's reply as it was sent
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


class FeedbackStore:
    """Ratings in ``path`` (created with its folder on first use); WAL mode, a connection per
    call, so waitress's threads can write at once. Rating a reply again replaces the rating."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)

    def add(self, reply_id: str, context: Sequence[tuple[str, str]], incoming: str, reply: str, rating: int,
            conversation_id: str | None = None) -> None:
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        with connect(self.path) as conn:
            conn.execute(
                "INSERT INTO ratings (reply_id, created, conversation_id, context, incoming, reply, rating) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(reply_id) DO UPDATE SET "
                "rating = excluded.rating, created = excluded.created",
                (reply_id, time.time(), conversation_id, json.dumps([list(t) for t in context], ensure_ascii=False),
                 incoming, reply, rating))

    def count(self) -> int:
        with connect(self.path) as conn:
            return conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]


def good_replies(db_path: Path | str, rules: Rules | None = None, persona: str = DEFAULT_PERSONA,
                 limit: int = MAX_FEEDBACK_EXAMPLES, memory: Memory | None = None) -> list[dict]:
    """Replies rated up, as prompt/completion training records (oldest first, the newest
    ``limit`` of them), cleaned by ``rules`` like an export; an absent database gives ``[]``.

    ``{"prompt": [...messages...], "completion": [{"role": "assistant", "content": "reply DONE"}],
    "conversation": "feedback#<reply id>", "source": "feedback"}``
    """
    path = Path(db_path)
    if not path.is_file():
        return []
    rules = rules or Rules()
    with connect(path) as conn:
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ratings'").fetchone()
        rows = conn.execute("SELECT reply_id, context, incoming, reply FROM ratings WHERE rating > 0 "
                            "ORDER BY created, reply_id").fetchall() if has_table else []
    builder = LivePrompt(persona, rules, memory or Memory())  # the facts retrieved as the server did
    records, seen = [], set()
    for reply_id, context, incoming, reply in rows:
        reply = clean_message(strip_terminator(reply), rules)
        if not reply or len(reply) > rules.max_reply_chars:
            continue
        try:
            turns = [(role, text) for role, text in json.loads(context)]
            prompt = builder.messages(turns, incoming)
        except (ValueError, TypeError):
            continue  # a row this version cannot read
        key = json.dumps([prompt, reply])
        if key in seen:
            continue
        seen.add(key)
        records.append({
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": completion_text(reply)}],
            "conversation": f"feedback#{reply_id}",
            "source": "feedback",
        })
    return records[-limit:] if limit > 0 else []

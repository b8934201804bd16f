"""The "Can you tell?" results: rounds shown to friends and their picks, in SQLite.

The server's page (``server.can_you_tell``) opens a round: a contact's message from the test
split and two replies, the person's real one and the twin's, in an order drawn here. The round
is stored before it is shown, with which slot holds the real reply, so a pick is judged here
and never trusted from the browser; a round is answered once. ``twin eval`` reads the file
(:func:`summary`): the share of answered rounds in which the friend took the twin's reply for
the real one, with its 95% confidence interval. Half fooled is the best a twin can do.

The database is WORKSPACE/can_you_tell.sqlite (``core.artifacts.JUDGEMENTS_FILE``). Every write
is one transaction (SQLite's own atomic commit), and concurrent requests wait for each other.
"""
from __future__ import annotations

import secrets
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from .fidelity import wilson_interval

STALE_S = 24 * 3600   # unanswered rounds older than this are dropped
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    id        TEXT PRIMARY KEY,
    created   REAL NOT NULL,
    example   INTEGER NOT NULL,        -- line of the test split the message comes from
    message   TEXT NOT NULL,
    real      TEXT NOT NULL,
    twin      TEXT NOT NULL,
    real_slot INTEGER NOT NULL,        -- 0 or 1: where the real reply was shown
    picked    INTEGER,                 -- the slot the friend took for the real one (NULL: not yet)
    answered  REAL
)
"""


class RoundError(ValueError):
    """An unknown round, one answered already, or a slot that is not 0 or 1."""


class JudgementStore:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def open_round(self, example: int, message: str, real: str, twin: str) -> dict:
        """Store a new round; returns its id, the message and the two replies in shown order."""
        round_id = secrets.token_urlsafe(12)
        real_slot = secrets.randbelow(2)
        now = time.time()
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM rounds WHERE picked IS NULL AND created < ?", (now - STALE_S,))
            db.execute("INSERT INTO rounds (id, created, example, message, real, twin, real_slot) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (round_id, now, example, message, real, twin, real_slot))
        replies = [twin, twin]
        replies[real_slot] = real
        return {"id": round_id, "message": message, "replies": replies}

    def answer(self, round_id: str, picked: int) -> dict:
        """Record the friend's pick (the slot they think is real); returns whether it was right."""
        if picked not in (0, 1) or isinstance(picked, bool):
            raise RoundError("'pick' must be 0 or 1")
        with closing(self._connect()) as db, db:
            row = db.execute("SELECT real_slot, picked FROM rounds WHERE id = ?", (round_id,)).fetchone()
            if row is None:
                raise RoundError("no such round (it may have expired): load a new one")
            if row[1] is not None:
                raise RoundError("this round was already answered")
            changed = db.execute("UPDATE rounds SET picked = ?, answered = ? WHERE id = ? AND picked IS NULL",
                                 (picked, time.time(), round_id)).rowcount
            if not changed:
                raise RoundError("this round was already answered")
        return {"correct": picked == row[0], "real": row[0]}


def summary(path: Path | str) -> dict | None:
    """The answered rounds in ``path``: how many, how many fooled, the share with its 95% interval
    (None when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        answered, fooled = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(picked != real_slot), 0) FROM rounds WHERE picked IS NOT NULL").fetchone()
    share = round(fooled / answered, 4) if answered else None
    return {"answered": answered, "fooled": fooled, "share_fooled": share,
            "ci95": list(wilson_interval(fooled, answered)) if answered else None,
            "meaning": "share of rounds in which a friend took the twin's reply for the real one "
                       "(0.5: they cannot tell)"}

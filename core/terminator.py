"""The reply terminator and the message separator, and the only code that looks for them.

A training reply ends with :data:`TERMINATOR` (`` DONE``); at inference ``DONE`` (or the
model's end-of-turn token) stops generation and is cut off. Consecutive chat messages from one
sender are joined with :data:`MESSAGE_SEPARATOR` and a reply is split on it again.

``DONE`` counts only as a whole word, so ``abandoned`` or ``DONEZO`` never end a reply:

- :func:`find_terminator` in a finished text: ``DONE`` followed by a non-word character or
  the end of the text;
- in a text still growing (a stream), ``DONE`` at the very end may yet become ``DONEZO``:
  ``final=False`` finds it only once a non-word character follows.
"""
from __future__ import annotations

import re

DONE = "DONE"
TERMINATOR = " " + DONE
MESSAGE_SEPARATOR = " | "

_FINAL = re.compile(r"\b" + DONE + r"\b")
_CONFIRMED = re.compile(r"\b" + DONE + r"(?=\W)")


def find_terminator(text: str, *, final: bool = True) -> int | None:
    """Index where the terminator starts in ``text``, or None."""
    match = (_FINAL if final else _CONFIRMED).search(text)
    return match.start() if match else None


def is_terminated(text: str) -> bool:
    """Whether a finished generation contains the terminator."""
    return find_terminator(text) is not None


def strip_terminator(text: str) -> str:
    """The reply before the first terminator (the whole text when there is none), trimmed."""
    at = find_terminator(text)
    return (text if at is None else text[:at]).strip()


def completion_text(reply: str) -> str:
    """The training target for a reply: the reply followed by the terminator."""
    return reply + TERMINATOR


def split_messages(reply: str) -> list[str]:
    """The separate chat messages a reply stands for (empty parts dropped)."""
    return [part.strip() for part in reply.split(MESSAGE_SEPARATOR.strip()) if part.strip()]


def join_messages(parts: list[str]) -> str:
    """Consecutive messages from one sender as one turn."""
    return MESSAGE_SEPARATOR.join(parts)

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
from dataclasses import dataclass
from typing import Callable

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



@dataclass(frozen=True)
class StyleTokens:
    """The tokens the [sampling] biases apply to, for one tokenizer: the token that begins
    :data:`TERMINATOR` after a word, and the one that begins :data:`MESSAGE_SEPARATOR` after a
    word (SmolLM2: `` D`` and `` |``). Found once per model, by :meth:`find`."""

    end: tuple[int, ...]
    separator: tuple[int, ...]

    @classmethod
    def find(cls, tokenize: Callable[[str], list[int]]) -> "StyleTokens":
        """``tokenize``: text -> ids, without special tokens. Each token is the first that
        differs between a word alone and the word followed by the terminator or separator:
        the token the model really writes in that place."""
        def after_word(suffix: str) -> tuple[int, ...]:
            base, full = tokenize("ok"), tokenize("ok" + suffix)
            common = 0
            while common < min(len(base), len(full)) and base[common] == full[common]:
                common += 1
            return (full[common],) if common < len(full) else ()

        return cls(after_word(TERMINATOR), after_word(MESSAGE_SEPARATOR.rstrip()))

    def biases(self, end_bias: float, separator_bias: float) -> dict[int, float]:
        """Token id -> logit bias (empty when both biases are 0)."""
        out: dict[int, float] = {}
        for ids, bias in ((self.end, end_bias), (self.separator, separator_bias)):
            for token in ids if bias else ():
                out[token] = out.get(token, 0.0) + bias
        return out

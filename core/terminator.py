"""The reply terminator and the message separator, and the only code that looks for them.

A reply in the training data files ends with :data:`TERMINATOR` (`` DONE``), as the data
rules say. The model is taught to end it with its own end-of-turn token instead
(:func:`training_reply`: the trainer gives the chat template the reply without ``DONE``, and the
template closes the turn with ``<|im_end|>``, ``<|eot_id|>``, ...): that token is one every
llama.cpp front end (llama-server, LM Studio, Ollama, llama-cpp-python's chat API) already stops
at and never shows, so the exported twin ends its replies by itself anywhere, with nothing
visible to strip. ``DONE`` still stops generation and is cut off wherever it appears (a twin
trained before this rule still writes it). Consecutive chat messages from one sender are
joined with :data:`MESSAGE_SEPARATOR` and a reply is split on it again.

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


def training_reply(completion: str) -> str:
    """The reply as the model learns it: the data file's completion without its terminator
    (the chat template's end-of-turn token ends it instead; see the module docstring)."""
    return strip_terminator(completion)


def split_messages(reply: str) -> list[str]:
    """The separate chat messages a reply stands for (empty parts dropped)."""
    return [part.strip() for part in reply.split(MESSAGE_SEPARATOR.strip()) if part.strip()]


def join_messages(parts: list[str]) -> str:
    """Consecutive messages from one sender as one turn."""
    return MESSAGE_SEPARATOR.join(parts)



@dataclass(frozen=True)
class StyleTokens:
    """The tokens the [sampling] biases apply to, for one tokenizer: the end-of-turn token (the
    trained twin ends a reply with it, see :func:`training_reply`) and the token that begins
    :data:`MESSAGE_SEPARATOR` after a word (SmolLM2: ``<|im_end|>`` and `` |``). Found once per
    model, by :meth:`find`."""

    end: tuple[int, ...]
    separator: tuple[int, ...]

    @classmethod
    def find(cls, tokenize: Callable[[str], list[int]], end_of_turn: int | None) -> "StyleTokens":
        """``tokenize``: text -> ids, without special tokens; ``end_of_turn``: the id the chat
        template closes an assistant turn with. The separator's token is the first that differs
        between a word alone and the word followed by the separator: the token the model really
        writes in that place."""
        base, full = tokenize("ok"), tokenize("ok" + MESSAGE_SEPARATOR.rstrip())
        common = 0
        while common < min(len(base), len(full)) and base[common] == full[common]:
            common += 1
        separator = (full[common],) if common < len(full) else ()
        return cls(() if end_of_turn is None else (end_of_turn,), separator)

    def biases(self, end_bias: float, separator_bias: float) -> dict[int, float]:
        """Token id -> logit bias (empty when both biases are 0)."""
        out: dict[int, float] = {}
        for ids, bias in ((self.end, end_bias), (self.separator, separator_bias)):
            for token in ids if bias else ():
                out[token] = out.get(token, 0.0) + bias
        return out

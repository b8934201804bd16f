"""What every runtime's backend shares (no Flask, no model library here).

* :class:`Backend`: ``stream(messages, decoding)`` yields raw text pieces (the terminator
  ``DONE`` may still be in them: voice.replies filters it), one generation at a time behind a
  :class:`~voice.queueing.Gate`, stopped between two tokens past its ``timeout`` (504).
* :func:`prompt_segments`: the chat template rendered with each message's content kept
  apart, so a backend tokenizes the template's own markup with special tokens and the
  messages as plain text: a message that contains ``<|im_start|>system`` cannot forge a turn.
* the first-token bans, the sampler order and the rest of how a reply is sampled are the
  decoding contract's (voice.decoding), which each runtime implements.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

from core.errors import InputError
from core.settings import REQUEST_TIMEOUT_S

from .decoding import Decoding
from .queueing import Deadline, Gate


DEFAULT_CONTEXT = 2048  # tokens of context a backend makes room for, unless told otherwise


class BackendError(InputError):
    """The model cannot be loaded (a missing or unreadable file: the user's to fix, exit 2)."""


class PromptTooLong(ValueError):
    """The conversation does not fit the model's context window (a 400 for the client)."""


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (DONE / end of turn) or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0


def new_stats(stats: dict | None) -> dict:
    stats = {} if stats is None else stats
    stats.update(finish_reason="stop", prompt_tokens=0, completion_tokens=0)
    return stats


class Backend:
    """Common part: the gate, the deadline, and ``generate`` built on ``stream``.

    A runtime's backend also says, for the parity of the runtimes, which tokens its first-token
    bans hold (``first_banned``) and which tokens the fitted biases move (``style_tokens``)."""

    name = "twin"
    metadata: dict = {}
    first_banned: frozenset[int] = frozenset()

    def __init__(self, gate: Gate | None = None, timeout: float | None = REQUEST_TIMEOUT_S):
        self.gate = gate or Gate()
        self.timeout = timeout

    def _pieces(self, messages: list[dict], decoding: Decoding, stats: dict) -> Iterator[str]:
        raise NotImplementedError

    def stream(self, messages: list[dict], decoding: Decoding | None = None, *, stats: dict | None = None,
               **changes) -> Iterator[str]:
        """Raw generated text pieces; waits for and holds the model while iterating.

        ``changes`` override fields of ``decoding`` (``temperature=0``, ``max_tokens=8`` ...);
        ``stats`` (if given) receives ``finish_reason``, ``prompt_tokens``, ``completion_tokens``.
        """
        decoding = (decoding or Decoding()).with_changes(**changes)
        stats = new_stats(stats)
        with self.gate.hold():
            deadline = Deadline(self.timeout)
            pieces = self._pieces(messages, decoding, stats)
            try:
                for piece in pieces:
                    deadline.check()
                    yield piece
            finally:
                pieces.close()

    def generate(self, messages: list[dict], decoding: Decoding | None = None, **changes) -> Generation:
        """The whole raw reply at once (DONE not yet stripped)."""
        stats: dict = {}
        text = "".join(self.stream(messages, decoding, stats=stats, **changes))
        return Generation(text, stats["finish_reason"], stats["prompt_tokens"], stats["completion_tokens"])

    def queue_depth(self) -> int:
        """Requests waiting for the model (the /metrics gauge)."""
        return self.gate.waiting

    def close(self) -> None:
        """Free the model's resources (nothing by default)."""


# A control character no cleaned message contains: marks where each message's content goes.
_MARK = "\x1etwin-content-{}\x1e"
_MARK_RE = re.compile("\x1etwin-content-(\\d+)\x1e")


def prompt_segments(render: Callable[[list[dict]], str], messages: list[dict]) -> list[tuple[str, bool]]:
    """The rendered prompt as ``(text, is_message_content)`` pieces, in order.

    ``render`` applies the chat template to messages; it is given placeholders instead of the
    contents, which are put back as pieces of their own. Tokenizing the template's pieces with
    special tokens and the contents as plain text gives the same tokens as tokenizing the whole
    text for ordinary messages (a piece boundary sits where the pre-tokenizer splits anyway),
    and plain-text tokens for a message that spells a control token.
    """
    marked = [dict(m, content=_MARK.format(i)) for i, m in enumerate(messages)]
    parts = _MARK_RE.split(render(marked))
    out: list[tuple[str, bool]] = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append((messages[int(part)]["content"], True))
        elif part:
            out.append((part, False))
    return out

"""A live conversation -> the prompt the twin was trained on (no Flask, no model here).

`twin serve`, `twin chat` and the feedback loop build the model's messages for a conversation
exactly as ``twin process`` built each training example:

1. every message is cleaned by :func:`dataprocess.conversations.clean_message` with the
   workspace's :class:`~core.settings.Rules` (lowercase, URLs -> ``link``, emoji stripped,
   repeats squashed, personal data scrubbed); a message that is empty after cleaning is
   dropped, and an earlier message longer than ``max_message_chars`` too, as in training;
2. consecutive messages of one side become one turn joined with `` | ``; the contact's
   messages since the twin last spoke are the incoming turn;
3. the earlier turns are cut by :func:`dataprocess.conversations.context_window`
   (``context_turns`` / ``context_chars``);
4. :meth:`dataprocess.memory.Memory.prompt` retrieves the facts for the turn and names the
   contact (when the client says who it is), and :func:`dataprocess.template.prompt_messages`
   renders system line, context and turn: the function every training example was made with.

The rules come from ``twin.toml`` (``core.settings.Settings.data``), or, for a GGUF served
without its workspace, from the GGUF's metadata key ``core.artifacts.GGUF_KEY_RULES``
(:func:`rules_from_metadata`); the memory (facts, contact groups) from ``data/memory.json`` or
the key ``core.artifacts.GGUF_KEY_MEMORY``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from core.artifacts import GGUF_KEY_RULES
from core.settings import DEFAULT_PERSONA, Rules, section_from_metadata
from core.terminator import join_messages

from .conversations import clean_message, context_window
from .memory import Memory


ROLES = ("user", "assistant")


def merge_turns(messages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive messages of one role as one turn, joined with the message separator."""
    turns: list[tuple[str, list[str]]] = []
    for role, text in messages:
        if turns and turns[-1][0] == role:
            turns[-1][1].append(text)
        else:
            turns.append((role, [text]))
    return [(role, join_messages(parts)) for role, parts in turns]


@dataclass(frozen=True)
class LivePrompt:
    """The persona and the data rules a twin was trained with; builds its prompts."""

    persona: str = DEFAULT_PERSONA
    rules: Rules = field(default_factory=Rules)
    memory: Memory = field(default_factory=Memory)

    def clean(self, text: str) -> str:
        """One message as the training data had it ('' when nothing is left)."""
        return clean_message(text, self.rules)

    def clean_history(self, history: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """``(role, text)`` messages cleaned; empty or (as in training) overlong ones dropped."""
        cap = self.rules.max_message_chars
        kept = []
        for role, text in history:
            if role not in ROLES:
                raise ValueError(f"role must be 'user' or 'assistant', not {role!r}")
            if cap and len(text) > cap:
                continue
            cleaned = self.clean(text)
            if cleaned:
                kept.append((role, cleaned))
        return kept

    def split(self, history: Sequence[tuple[str, str]], incoming: str) -> tuple[list[tuple[str, str]], str]:
        """(context turns, incoming turn) for the model, both cleaned and cut like a training pair."""
        said = self.clean_history(history)
        text = self.clean(incoming)
        if not text:
            # Nothing of the message survives the rules (only emoji, say): training never saw such
            # a message, so the twin hears it lightly normalised rather than not at all.
            text = " ".join(incoming.split())
            text = text.lower() if self.rules.lowercase else text
        turns = merge_turns(said + [("user", text)])
        return context_window(turns[:-1], self.rules), turns[-1][1]

    def messages(self, history: Sequence[tuple[str, str]], incoming: str,
                 contact: str | None = None) -> list[dict[str, str]]:
        """The chat messages the model gets: system line (with the facts retrieved for the turn,
        and ``contact``: who is texting, as the client names them), context, the contact's turn."""
        context, turn = self.split(history, incoming)
        return self.memory.prompt(self.persona, turn, context, self.rules, contact)


def rules_from_metadata(metadata: Mapping[str, str]) -> Rules:
    """The data rules stored in a GGUF's metadata (defaults when absent or unreadable)."""
    return section_from_metadata(Rules, metadata, GGUF_KEY_RULES)

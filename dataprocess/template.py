"""The prompt format shared by every stage: defined here once, imported everywhere.

A training example and a live request are built the same way: a short system line naming the
persona (followed, when known, by who the twin is texting and the facts retrieved for the
message: ``dataprocess.memory``), earlier turns of the conversation as alternating user/assistant messages, then the
contact's latest message(s). The twin's reply is the assistant message; in training data it
ends with the terminator `` DONE`` (``core.terminator``), which at inference stops generation and is stripped. The
base model's own chat template (ChatML for SmolLM2) renders these messages into text; a base
model without a chat template gets :data:`FALLBACK_CHAT_TEMPLATE`.

Consecutive messages from one sender are joined with ``core.terminator.MESSAGE_SEPARATOR``;
a generated reply is split on it back into separate chat messages.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

from core.terminator import DONE, MESSAGE_SEPARATOR


# ChatML, used when a base model ships no chat template of its own.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SYSTEM_PROMPT = "you are {name}. reply to texts the way {name} does."
_CONTACT_LINE = "\ntexting: {contact}"
_VOICE_LINE = "\nyou write to them: {voice}"
_FACTS_HEAD = "\nwhat you know:"
_FACT_LINE = "\n- {fact}"


@lru_cache(maxsize=4096)
def system_prompt(persona: str, facts: tuple[str, ...] = (), contact: str | None = None,
                  voice: str | None = None) -> str:
    """The system line that tells the model whose voice to use; then, when given, who it is
    texting (``texting: mum (family)``), how the person writes to them (``voice``: ``you write to
    them: longer texts``, only with a contact) and the facts retrieved for this message, one a line.
    With none, it is the plain line the exported GGUF's chat template carries as its default."""
    text = _SYSTEM_PROMPT.format(name=persona)
    if contact:
        text += _CONTACT_LINE.format(contact=contact)
        if voice:
            text += _VOICE_LINE.format(voice=voice)
    if facts:
        text += _FACTS_HEAD + "".join(_FACT_LINE.format(fact=fact) for fact in facts)
    return text


_ROLES = ("user", "assistant")


def prompt_messages(
    persona: str,
    incoming: str,
    history: Sequence[tuple[str, str]] = (),
    *,
    facts: tuple[str, ...] = (),
    contact: str | None = None,
    voice: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages for one turn: system line (with ``contact`` and ``facts``, see
    :func:`system_prompt`), earlier turns, then the incoming text.

    ``history`` holds ``(role, text)`` pairs, role ``"user"`` (the contact) or ``"assistant"``
    (the twin / me), oldest first. Consecutive turns of the same role are merged with
    :data:`MESSAGE_SEPARATOR` so the roles always alternate, as chat templates expect.
    (Built for speed too: ``twin process`` makes one per training example, hundreds of
    thousands on a long history.)
    """
    messages = [{"role": "system", "content": system_prompt(persona, facts, contact, voice)}]
    last = None
    for role, text in history:
        if role == last:
            messages[-1]["content"] += MESSAGE_SEPARATOR + text
            continue
        if role not in _ROLES:
            raise ValueError(f"history role must be 'user' or 'assistant', not {role!r}")
        if last is None and role == "assistant":
            continue  # a conversation may not start with the twin speaking: leading replies go
        messages.append({"role": role, "content": text})
        last = role
    if last == "user":
        messages[-1]["content"] += MESSAGE_SEPARATOR + incoming
    else:
        messages.append({"role": "user", "content": incoming})
    return messages


def stop_strings(extra: Iterable[str] = ()) -> list[str]:
    """Strings that end generation: the terminator plus any end-of-turn markers."""
    return [DONE, *extra]

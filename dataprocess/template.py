"""The prompt format shared by every stage: defined here once, imported everywhere.

A training example and a live request are built the same way: a short system line naming the
persona, earlier turns of the conversation as alternating user/assistant messages, then the
contact's latest message(s). The twin's reply is the assistant message; in training data it
ends with the terminator `` DONE``, which at inference stops generation and is stripped. The
base model's own chat template (ChatML for SmolLM2) renders these messages into text; a base
model without a chat template gets :data:`FALLBACK_CHAT_TEMPLATE`.

Consecutive messages from one sender are joined with :data:`MESSAGE_SEPARATOR`; a generated
reply is split on it back into separate chat messages.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

DONE = "DONE"
TERMINATOR = " " + DONE
MESSAGE_SEPARATOR = " | "

# ChatML, used when a base model ships no chat template of its own.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SYSTEM_PROMPT = "you are {name}. reply to texts the way {name} does."


def system_prompt(persona: str) -> str:
    """The system line that tells the model whose voice to use."""
    return _SYSTEM_PROMPT.format(name=persona)


def prompt_messages(
    persona: str,
    incoming: str,
    history: Sequence[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """Chat messages for one turn: system line, earlier turns, then the incoming text.

    ``history`` holds ``(role, text)`` pairs, role ``"user"`` (the contact) or ``"assistant"``
    (the twin / me), oldest first. Consecutive turns of the same role are merged with
    :data:`MESSAGE_SEPARATOR` so the roles always alternate, as chat templates expect.
    """
    turns: list[dict[str, str]] = []
    for role, text in list(history) + [("user", incoming)]:
        if role not in ("user", "assistant"):
            raise ValueError(f"history role must be 'user' or 'assistant', not {role!r}")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += MESSAGE_SEPARATOR + text
        else:
            turns.append({"role": role, "content": text})
    # A conversation may not start with the twin speaking: drop leading assistant turns.
    while turns and turns[0]["role"] == "assistant":
        turns.pop(0)
    return [{"role": "system", "content": system_prompt(persona)}] + turns


def completion_text(reply: str) -> str:
    """The training target for a reply: the reply followed by the terminator."""
    return reply + TERMINATOR


_DONE_RE = re.compile(r"\s*\bDONE\b.*\Z", re.DOTALL)


def strip_terminator(generated: str) -> str:
    """Cut a generated reply at the first DONE (and anything after it)."""
    return _DONE_RE.sub("", generated).strip()


def split_messages(reply: str) -> list[str]:
    """Split a reply into the separate chat messages it stands for."""
    return [part.strip() for part in reply.split(MESSAGE_SEPARATOR.strip()) if part.strip()]


def stop_strings(extra: Iterable[str] = ()) -> list[str]:
    """Strings that end generation: the terminator plus any end-of-turn markers."""
    return [DONE, *extra]


# An exported GGUF's ``general.name`` carries the persona, so `twin serve --model FILE.gguf`
# builds the same system line the twin was trained with even without the workspace.
_GGUF_NAME_PREFIX = "twin-"


def gguf_model_name(persona: str) -> str:
    return _GGUF_NAME_PREFIX + persona


def persona_from_gguf_name(name: str | None) -> str | None:
    if name and name.startswith(_GGUF_NAME_PREFIX) and len(name) > len(_GGUF_NAME_PREFIX):
        return name[len(_GGUF_NAME_PREFIX):]
    return None

"""Training examples: pairs and facts -> prompt/completion records, split by conversation.

A record is TRL's conversational prompt-completion format plus bookkeeping::

    {"prompt": [{"role": "system", ...}, {"role": "user", ...}],
     "completion": [{"role": "assistant", "content": "yeah | bartaco? DONE"}],
     "conversation": "alex#12", "source": "chat"}
"""
from __future__ import annotations

import random
from typing import Iterable

from core.artifacts import SPLITS
from core.settings import Rules
from core.terminator import completion_text

from .clean import clean_text
from .conversations import Pair
from .facts import Facts
from .memory import Memory

_NO_MEMORY = Memory()


def example_from_pair(pair: Pair, persona: str, memory: Memory = _NO_MEMORY, rules: Rules | None = None,
                      contact: str | None = None) -> dict:
    """One reply pair as a record; its prompt holds the facts retrieved for the incoming turn and
    the contact, built as the server builds a live prompt (:meth:`Memory.prompt`)."""
    record = {
        "prompt": memory.prompt(persona, pair.incoming, pair.context, rules, contact),
        "completion": [{"role": "assistant", "content": completion_text(pair.reply)}],
        "conversation": pair.conversation,
        "source": "chat",
    }
    if contact:
        record["contact"] = contact
    return record


def examples_from_facts(facts: Facts, persona: str, rules: Rules, memory: Memory = _NO_MEMORY) -> list[dict]:
    """Each fact question/answer as an example, repeated ``rules.facts_repeat`` times; the
    prompt holds the facts retrieved for the question (the twin learns to answer from them)."""
    out = []
    for qa in facts.qa:
        question = clean_text(qa.question, lowercase=rules.lowercase, scrub=False)
        answer = clean_text(qa.answer, lowercase=rules.lowercase, scrub=False)
        for _ in range(max(rules.facts_repeat, 0)):
            out.append({
                "prompt": memory.prompt(persona, question, (), rules),
                "completion": [{"role": "assistant", "content": completion_text(answer)}],
                "conversation": "facts",
                "source": "facts",
            })
    return out


def assign_splits(conversation_ids: Iterable[str], fractions: tuple[float, float, float],
                  seed: int) -> dict[str, str]:
    """Conversation id -> "valid" or "test" (train for the rest): whole conversations, seeded."""
    ids = sorted(set(conversation_ids))
    random.Random(seed).shuffle(ids)
    total = sum(fractions)
    n_valid = round(len(ids) * fractions[1] / total)
    n_test = round(len(ids) * fractions[2] / total)
    if len(ids) >= 3:
        n_valid, n_test = max(n_valid, 1 if fractions[1] else 0), max(n_test, 1 if fractions[2] else 0)
    assign = {cid: "valid" for cid in ids[:n_valid]}
    assign.update({cid: "test" for cid in ids[n_valid:n_valid + n_test]})
    return assign


def split_by_conversation(examples: list[dict], fractions: tuple[float, float, float],
                          seed: int) -> dict[str, list[dict]]:
    """Assign whole conversations to train/valid/test so no conversation leaks across splits."""
    assign = assign_splits((ex["conversation"] for ex in examples), fractions, seed)
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for ex in examples:
        splits[assign.get(ex["conversation"], "train")].append(ex)
    return splits

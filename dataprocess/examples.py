"""Training examples: pairs and facts -> prompt/completion records, split by conversation.

A record is TRL's conversational prompt-completion format plus bookkeeping::

    {"prompt": [{"role": "system", ...}, {"role": "user", ...}],
     "completion": [{"role": "assistant", "content": "yeah | bartaco? DONE"}],
     "conversation": "alex#12", "source": "chat"}
"""
from __future__ import annotations

import math
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


def _systematic(items: list[str], share: float, rng: random.Random) -> list[str]:
    """About ``share`` of ``items`` (already shuffled), by systematic sampling from a random
    start: each group gets its share to within one, small groups included on average."""
    start = rng.random()
    return [item for i, item in enumerate(items) if math.floor((i + 1) * share + start) > math.floor(i * share + start)]


def assign_splits(conversation_ids: Iterable[str], fractions: tuple[float, float, float],
                  seed: int) -> dict[str, str]:
    """Conversation id -> "valid" or "test" (train for the rest): whole conversations, seeded.

    Stratified by contact (the id's part before ``#``): each contact's conversations are split
    in the fractions, so the test split holds every main contact and ``twin eval`` can compare
    the twin's voice with each of them."""
    ids = sorted(set(conversation_ids))
    rng = random.Random(seed)
    total = sum(fractions)
    valid_share, test_share = fractions[1] / total, fractions[2] / total
    by_contact: dict[str, list[str]] = {}
    for cid in ids:
        by_contact.setdefault(cid.rsplit("#", 1)[0], []).append(cid)
    assign: dict[str, str] = {}
    for contact in sorted(by_contact):
        group = by_contact[contact]
        rng.shuffle(group)
        test = _systematic(group, test_share, rng)
        assign.update(dict.fromkeys(test, "test"))
        rest = [cid for cid in group if cid not in assign]
        left = 1.0 - test_share
        assign.update(dict.fromkeys(_systematic(rest, valid_share / left if left > 0 else 0.0, rng), "valid"))
    if len(ids) >= 3:  # a small history still gets one valid and one test conversation
        for split, share in (("valid", valid_share), ("test", test_share)):
            if share and split not in assign.values():
                assign[rng.choice([cid for cid in ids if cid not in assign])] = split
    return assign


def split_by_conversation(examples: list[dict], fractions: tuple[float, float, float],
                          seed: int) -> dict[str, list[dict]]:
    """Assign whole conversations to train/valid/test so no conversation leaks across splits."""
    assign = assign_splits((ex["conversation"] for ex in examples), fractions, seed)
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for ex in examples:
        splits[assign.get(ex["conversation"], "train")].append(ex)
    return splits

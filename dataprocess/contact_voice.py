"""How the person writes to each contact, told to the twin in the prompt: "you write to them: longer texts".

A contact's name alone was not enough for the twin to write to them as the person does: on the
bundled sample the person writes to Mom 1.6 times as long as to anyone else, and the twin wrote to
Mom about as long with her name in the prompt as without it (BENCHMARKS.md, session 11): one name
among twenty, on 8% of the examples, is a cue the twin learns slowly, while the messages it
answers say much the same. So ``twin process`` measures, for each contact (each label the prompt
shows: a group pools its members), how the person's replies to them differ from their replies to
everyone, and where they differ clearly says so in words the base model already reads:

- **length**: replies to the contact at least :data:`LONGER` times the person's mean length are
  "longer texts", at most :data:`SHORTER` times "shorter texts";
- **capitals** (only when the data rules keep capitals): a share of replies with a capital
  :data:`CAPITALS_GAP` above or below the person's is "with capitals" / "no capitals".

A contact with fewer than :data:`MIN_REPLIES` replies gets no hint (too few to tell), nor one
whose replies are like the rest. The hints live in the twin's :class:`~dataprocess.memory.Memory`
(``data/memory.json`` and the GGUF), so ``twin serve``, ``twin chat --as`` and the bots show the
same line for the same contact as training did, and an unnamed message shows none.

The figures are over the person's whole history with the contact, and a "reply" is what a training
reply is: the pairs of :func:`dataprocess.conversations.pairs_from_chat`, cut by the same rules
(session gap, reply window, longest reply), so the hint describes the replies the twin learns
from. What reaches the prompt is one of a few fixed words, never a message's text.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from .conversations import Stats, pairs_from_chat
from .rules import Rules

MIN_REPLIES = 20       # fewer replies to a contact say nothing certain about how one writes to them
LONGER = 1.25          # mean length this many times the person's mean: "longer texts"
SHORTER = 0.8          # ... at most this many times: "shorter texts"
CAPITALS_GAP = 0.25    # share of replies with a capital this far from the person's: said


def training_replies(messages: Sequence[tuple], rules: Rules) -> list[str]:
    """The person's replies in one chat's kept messages (``(timestamp, from_me, text)``): the
    replies of the training pairs the same messages make, by the same function."""
    return [pair.reply for pair in pairs_from_chat("", messages, rules, Stats())]


def _figures(replies: list[str]) -> tuple[float, float]:
    """Mean length and share of replies holding a capital."""
    return (sum(map(len, replies)) / len(replies), sum(r != r.lower() for r in replies) / len(replies))


def voice_hints(by_chat: Mapping[str, Sequence[tuple]], label_of: Callable[[str], str | None],
                rules: Rules) -> dict[str, str]:
    """For each contact label (``label_of(chat)``; chats of one label pooled) whose replies differ
    clearly from the person's replies to everyone, the words the prompt says about it
    ("longer texts", "shorter texts, with capitals"). Capitals are said only where ``rules`` keep them."""
    capitals = not rules.lowercase
    per_label: dict[str, list[str]] = defaultdict(list)
    everyone: list[str] = []
    for chat, messages in by_chat.items():
        runs = training_replies(messages, rules)
        everyone.extend(runs)
        label = label_of(chat)
        if label:
            per_label[label].extend(runs)
    if len(everyone) < MIN_REPLIES:
        return {}
    mean_all, caps_all = _figures(everyone)
    hints = {}
    for label, replies in per_label.items():
        if len(replies) < MIN_REPLIES:
            continue
        mean, caps = _figures(replies)
        said = []
        if mean >= LONGER * mean_all:
            said.append("longer texts")
        elif mean <= SHORTER * mean_all:
            said.append("shorter texts")
        if capitals and caps - caps_all >= CAPITALS_GAP:
            said.append("with capitals")
        elif capitals and caps_all - caps >= CAPITALS_GAP:
            said.append("no capitals")
        if said:
            hints[label] = ", ".join(said)
    return dict(sorted(hints.items()))

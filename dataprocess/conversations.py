"""From a cleaned message stream to (context, incoming, reply) pairs.

Messages of one chat are cut into conversations at long silences; consecutive messages from the
same side are merged into one turn with the message separator; a turn of mine that follows a
contact's turn within the reply window becomes a training pair, with the earlier turns of the
same conversation as context.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timedelta
from typing import Iterable, Iterator, Sequence

from .clean import clean_text
from .message import Message
from .rules import Rules
from core.terminator import MESSAGE_SEPARATOR


@dataclass
class Turn:
    """Consecutive messages from one side of a conversation."""

    from_me: bool
    start: datetime
    end: datetime
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return MESSAGE_SEPARATOR.join(self.parts)


@dataclass
class Pair:
    conversation: str
    context: list[tuple[str, str]]  # (role, text), oldest first
    incoming: str
    reply: str


class Stats(Counter):
    """Counts of what was read and what each rule dropped (for the data report)."""


CONTACT_PLACEHOLDER = "<contact>"


def anonymize_names(text: str, names: Iterable[str]) -> str:
    """Replace the given people's full names and first names (3+ letters) in ``text``."""
    parts = set()
    for name in names:
        if name:
            parts.add(name)
            first = name.split()[0]
            if len(first) >= 3:
                parts.add(first)
    for part in sorted(parts, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", CONTACT_PLACEHOLDER, text, flags=re.IGNORECASE)
    return text


def clean_message(text: str, rules: Rules, contact_names: Iterable[str] = ()) -> str:
    """One message's text as the rules clean it: for training examples and live requests alike.

    ``contact_names`` are replaced with :data:`CONTACT_PLACEHOLDER` (the contacts'
    messages, when ``rules.anonymize_contacts`` is on)."""
    if contact_names:
        text = anonymize_names(text, contact_names)
    return clean_text(text, lowercase=rules.lowercase, urls=rules.replace_urls, emoji=rules.strip_emoji,
                      repeats=rules.squash_repeats, scrub=rules.scrub_personal_data)


def select_messages(messages: Iterable[Message], rules: Rules, stats: Stats) -> dict[str, list[Message]]:
    """Apply the per-message rules and group what is kept by chat, top contacts only.

    A chat is keyed by its name and the file it came from, so a WhatsApp "Alex" and a
    Telegram "Alex" stay separate conversations (their name gets the file's name appended);
    the top-contacts rule counts a name's messages across all files.
    """
    by_chat: dict[tuple[str, str], list[Message]] = {}
    for msg in messages:
        stats["read"] += 1
        if msg.kind != "text":
            stats[f"dropped_{msg.kind}"] += 1
            continue
        if msg.timestamp < rules.since:
            stats["dropped_before_cutoff"] += 1
            continue
        if msg.is_group and not rules.group_chats:
            stats["dropped_group_chat"] += 1
            continue
        if rules.max_message_chars and len(msg.text) > rules.max_message_chars:
            stats["dropped_too_long"] += 1
            continue
        names = (msg.chat, msg.sender) if rules.anonymize_contacts and not msg.from_me else ()
        text = clean_message(msg.text, rules, contact_names=names)
        if not text:
            stats["dropped_empty_after_cleaning"] += 1
            continue
        if msg.is_group and not msg.from_me:
            speaker = CONTACT_PLACEHOLDER if rules.anonymize_contacts else msg.sender
            text = f"{speaker.lower() if rules.lowercase else speaker}: {text}"
        by_chat.setdefault((msg.chat, msg.source), []).append(
            Message(sender=msg.sender, text=text, timestamp=msg.timestamp, chat=msg.chat,
                    from_me=msg.from_me, kind=msg.kind, is_group=msg.is_group, source=msg.source))
    per_name = Counter()
    for (chat, _), kept in by_chat.items():
        per_name[chat] += len(kept)
    if rules.top_contacts and len(per_name) > rules.top_contacts:
        ranked = sorted(per_name, key=lambda chat: (-per_name[chat], chat))
        dropped = set(ranked[rules.top_contacts:])
        for key in [key for key in by_chat if key[0] in dropped]:
            stats["dropped_not_top_contact"] += len(by_chat.pop(key))
    stats["kept_messages"] = sum(len(v) for v in by_chat.values())
    stats["kept_chats"] = len({chat for chat, _ in by_chat})
    names = Counter(chat for chat, _ in by_chat)
    return {(chat if names[chat] == 1 else f"{chat} ({Path(source).name})"): kept
            for (chat, source), kept in by_chat.items()}


def conversations(messages: list[Message], gap: timedelta, burst: timedelta,
                  block: timedelta | None = None) -> Iterator[list[Turn]]:
    """Cut one chat's messages at silences longer than ``gap`` and merge them into turns.

    Consecutive messages from one side join the same turn only while each follows the last
    within ``burst``; a later message from the same side starts a turn of its own. A
    conversation that has lasted ``block`` (the gap, by default) is also cut, at the next turn
    the contact starts after one of mine: a busy chat with no long silence becomes time blocks
    that the split can spread over train, valid and test, and context never crosses one.
    """
    block = gap if block is None else block
    turns: list[Turn] = []
    last: datetime | None = None
    for msg in sorted(messages, key=lambda m: m.timestamp):
        if turns and (msg.timestamp - last > gap or (
                msg.timestamp - turns[0].start > block and not msg.from_me and turns[-1].from_me)):
            yield turns
            turns = []
        if turns and turns[-1].from_me == msg.from_me and msg.timestamp - turns[-1].end <= burst:
            turns[-1].parts.append(msg.text)
            turns[-1].end = msg.timestamp
        else:
            turns.append(Turn(msg.from_me, msg.timestamp, msg.timestamp, [msg.text]))
        last = msg.timestamp
    if turns:
        yield turns


def context_window(turns: Sequence[tuple[str, str]], rules: Rules) -> list[tuple[str, str]]:
    """The earlier ``(role, text)`` turns a prompt keeps, oldest first: at most
    ``rules.context_turns`` of the latest, while their text fits in ``rules.context_chars``.
    Training examples and live requests are both cut by this one function."""
    picked: list[tuple[str, str]] = []
    used = 0
    for role, text in reversed(list(turns)[-rules.context_turns:] if rules.context_turns else []):
        used += len(text)
        if used > rules.context_chars:
            break
        picked.append((role, text))
    picked.reverse()
    return picked


def pairs_from_chat(chat: str, messages: list[Message], rules: Rules, stats: Stats) -> Iterator[Pair]:
    """Training pairs of one chat: each reply of mine to the contact's turn before it."""
    window = timedelta(minutes=rules.reply_window_minutes)
    for index, turns in enumerate(conversations(messages, timedelta(hours=rules.session_gap_hours), window)):
        conversation = f"{chat}#{index}"
        for position in range(1, len(turns)):
            before, reply = turns[position - 1], turns[position]
            if not reply.from_me or before.from_me:
                continue
            if reply.start - before.end > window:
                stats["dropped_late_reply"] += 1
                continue
            if len(reply.text) > rules.max_reply_chars:
                stats["dropped_long_reply"] += 1
                continue
            earlier = [("assistant" if t.from_me else "user", t.text) for t in turns[max(0, position - 1 - rules.context_turns):position - 1]]
            yield Pair(conversation, context_window(earlier, rules), before.text, reply.text)

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
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from datetime import datetime, timedelta
from typing import Iterable, Iterator, Sequence

from .clean import clean_text
from .clean_pool import TextCleaner, cleaning_flags
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
    pattern = _names_pattern(tuple(names))
    return pattern.sub(CONTACT_PLACEHOLDER, text) if pattern is not None else text


@lru_cache(maxsize=1024)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern | None:
    """One compiled pattern for a chat's names (a history has few; each message reuses it).
    Longer names come first in the alternation, so a full name wins over its first name."""
    parts = set()
    for name in names:
        if name:
            parts.add(name)
            first = name.split()[0]
            if len(first) >= 3:
                parts.add(first)
    if not parts:
        return None
    alternatives = "|".join(re.escape(part) for part in sorted(parts, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def clean_message(text: str, rules: Rules, contact_names: Iterable[str] = ()) -> str:
    """One message's text as the rules clean it: for training examples and live requests alike.

    ``contact_names`` are replaced with :data:`CONTACT_PLACEHOLDER` (the contacts'
    messages, when ``rules.anonymize_contacts`` is on)."""
    if contact_names:
        text = anonymize_names(text, contact_names)
    return clean_text(text, **cleaning_flags(rules))


# A message kept by the rules, with only what pairing needs: (timestamp, from_me, text). A plain
# tuple, made in a tenth of a named tuple's time: a chat of a million messages costs a third of
# the memory of full Message records and nothing for Python's garbage collector to walk (a tuple
# of strings, a datetime and a bool is untracked).
Kept = tuple[datetime, bool, str]


def select_messages(messages: Iterable[Message], rules: Rules, stats: Stats) -> dict[str, list[Kept]]:
    """Apply the per-message rules and group what is kept by chat, top contacts only.

    A chat is keyed by its name and the file it came from, so a WhatsApp "Alex" and a
    Telegram "Alex" stay separate conversations (their name gets the file's name appended);
    the top-contacts rule counts a name's messages across all files.
    """
    by_chat: dict[tuple[str, str], list[Kept]] = {}
    dropped = Counter()
    read = 0
    since, group_chats, max_chars = rules.since, rules.group_chats, rules.max_message_chars
    anonymize = rules.anonymize_contacts

    def keep(ready: list[tuple[str, Message]]) -> None:
        """Group cleaned messages by chat (a batch from the cleaner: one loop, not a call each)."""
        key = kept = None
        for text, msg in ready:
            if not text:
                dropped["dropped_empty_after_cleaning"] += 1
                continue
            if msg.is_group and not msg.from_me:
                speaker = CONTACT_PLACEHOLDER if anonymize else msg.sender
                text = f"{speaker.lower() if rules.lowercase else speaker}: {text}"
            if key != (msg.chat, msg.source):
                key = (msg.chat, msg.source)
                kept = by_chat.get(key)
                if kept is None:
                    kept = by_chat[key] = []
            kept.append((msg.timestamp, msg.from_me, text))

    # clean_message's cleaning (as for live requests); on a long history in a second process
    with TextCleaner(rules) as cleaner:
        for msg in messages:
            read += 1
            if msg.kind != "text":
                dropped[f"dropped_{msg.kind}"] += 1
                continue
            if msg.timestamp < since:
                dropped["dropped_before_cutoff"] += 1
                continue
            if msg.is_group and not group_chats:
                dropped["dropped_group_chat"] += 1
                continue
            if max_chars and len(msg.text) > max_chars:
                dropped["dropped_too_long"] += 1
                continue
            raw = anonymize_names(msg.text, (msg.chat, msg.sender)) if anonymize and not msg.from_me else msg.text
            ready = cleaner.add(raw, msg)
            if ready:
                keep(ready)
        keep(list(cleaner.drain()))
    stats["read"] += read
    stats.update(dropped)
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
    file_names = Counter((chat, Path(source).name) for chat, source in by_chat)

    def label(chat: str, source: str) -> str:  # the file's name, or its path where two share a name
        if names[chat] == 1:
            return chat
        name = Path(source).name
        return f"{chat} ({name if file_names[chat, name] == 1 else source})"

    return {label(chat, source): kept for (chat, source), kept in by_chat.items()}


def conversations(messages: Sequence[Kept], gap: timedelta, burst: timedelta,
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
    # Exports are in time order already: sorting them again is a linear scan (Timsort).
    for timestamp, from_me, text in sorted(messages, key=itemgetter(0)):
        if turns and (timestamp - last > gap or (
                timestamp - turns[0].start > block and not from_me and turns[-1].from_me)):
            yield turns
            turns = []
        if turns and turns[-1].from_me == from_me and timestamp - turns[-1].end <= burst:
            turns[-1].parts.append(text)
            turns[-1].end = timestamp
        else:
            turns.append(Turn(from_me, timestamp, timestamp, [text]))
        last = timestamp
    if turns:
        yield turns


def context_window(turns: Sequence[tuple[str, str]], rules: Rules) -> list[tuple[str, str]]:
    """The earlier ``(role, text)`` turns a prompt keeps, oldest first: at most
    ``rules.context_turns`` of the latest, while their text fits in ``rules.context_chars``.
    Training examples and live requests are both cut by this one function."""
    picked: list[tuple[str, str]] = []
    used = 0
    recent = turns[-rules.context_turns:] if rules.context_turns else []
    for role, text in reversed(recent):
        used += len(text)
        if used > rules.context_chars:
            break
        picked.append((role, text))
    picked.reverse()
    return picked


def pairs_from_chat(chat: str, messages: Sequence[Kept], rules: Rules, stats: Stats) -> Iterator[Pair]:
    """Training pairs of one chat: each reply of mine to the contact's turn before it."""
    window = timedelta(minutes=rules.reply_window_minutes)
    for index, turns in enumerate(conversations(messages, timedelta(hours=rules.session_gap_hours), window)):
        conversation = f"{chat}#{index}"
        # each turn's role and text, joined once (a turn is context for up to context_turns pairs)
        said = [("assistant" if t.from_me else "user", t.text) for t in turns]
        for position in range(1, len(turns)):
            before, reply = turns[position - 1], turns[position]
            if not reply.from_me or before.from_me:
                continue
            if reply.start - before.end > window:
                stats["dropped_late_reply"] += 1
                continue
            reply_text = said[position][1]
            if len(reply_text) > rules.max_reply_chars:
                stats["dropped_long_reply"] += 1
                continue
            earlier = said[max(0, position - 1 - rules.context_turns):position - 1]
            yield Pair(conversation, context_window(earlier, rules), said[position - 1][1], reply_text)

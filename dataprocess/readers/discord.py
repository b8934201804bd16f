"""Reader for DiscordChatExporter's JSON export (one channel, or one partition of it, per file).

Shape: ``{"guild": {"id", "name"}, "channel": {"id", "type", "name", ...}, "messages": [{"id",
"type", "timestamp", "content", "author": {"id", "name", "nickname", "isBot"}, "attachments",
"stickers", "reference": {"messageId"}}, ...]}``. The file is streamed (ijson): a first pass of
parser events learns the channel, the authors and who replied to whom; the second builds one
message at a time.

* Direct messages (channel type ``DirectTextChat``, one-on-one, chat = the channel's name, which
  is the other person's; ``DirectGroupTextChat``, a group) are read whole. Messages by bots and
  message types other than ``Default``/``Reply`` (calls, pins, members joining, ...) ->
  ``system``; attachments or stickers without content -> ``media``.
* **Server channels** are not conversations with me, so once I am known only the exchanges I am
  part of are kept: my messages, the messages I replied to and the messages that replied to mine
  (through ``reference.messageId``); everything else, bots included, is left out. Each exchange
  is presented as a one-on-one chat named ``"<server> #<channel> · <partner>"``, so that a
  partner's message and my reply to it land next to each other and can form a training pair;
  my messages that are neither replies nor replied to go to ``"<server> #<channel>"``, a group
  chat. When I am not known (no ``--me``) or never wrote there, the channel is read whole as
  that group chat, with nothing from me.
* Partitions of one channel (``… [part 2].json``, written by ``--partition``) are one chat: their
  ``source`` is the file name without the part number.
* Timestamps (ISO 8601 with an offset) are converted to naive local time.

**Who is me**: ``--me`` matched against each author's id, name and nickname; without it, a
one-on-one DM's other author than the person the channel is named after. A malformed message is
skipped and recorded with its index in ``messages``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from ._common import json_events, json_items, json_keys, local_from_iso
from .base import NOBODY, Chat, Reader, path_text, same_person

DIRECT = "DirectTextChat"
DIRECT_GROUP = "DirectGroupTextChat"
_CHAT_TYPES = {"Default", "Reply"}
_PART_RE = re.compile(r" \[part \d+\](?=\.json$)", re.IGNORECASE)


def _author(msg: dict) -> dict:
    author = msg.get("author")
    if not isinstance(author, dict):
        raise TypeError("message has no author object")
    return author


def _display(author: dict) -> str:
    return author.get("nickname") or author.get("name") or str(author.get("id", ""))


def _first_pass(path: Path) -> dict:
    """Channel, guild, authors (id -> author fields), and per message its author and reference."""
    channel: dict = {}
    guild: dict = {}
    authors: dict[str, dict] = {}
    author_of: dict[str, str] = {}  # message id -> author id
    replies: list[tuple[str, str, str]] = []  # (message id, author id, referenced message id)
    count = 0
    msg_id = author_id = ref = None
    author: dict = {}
    for prefix, event, value in json_events(path, "DiscordChatExporter"):
        if prefix.startswith("messages.item"):
            rest = prefix[13:]
            if rest == "":
                if event == "start_map":
                    msg_id = author_id = ref = None
                    author = {}
                elif event == "end_map":
                    if author_id is not None:
                        authors.setdefault(author_id, author)
                        if msg_id is not None:
                            author_of[msg_id] = author_id
                            if ref is not None:
                                replies.append((msg_id, author_id, ref))
                if event not in ("end_map", "map_key", "end_array"):
                    count += 1
            elif rest == ".id":
                msg_id = str(value)
            elif rest.startswith(".author.") and event not in ("map_key", "start_map", "end_map"):
                field_name = rest[8:]
                if field_name == "id":
                    author_id = str(value)
                if field_name in ("id", "name", "nickname", "isBot"):
                    author[field_name] = value
            elif rest == ".reference.messageId" and value is not None:
                ref = str(value)
        elif prefix.startswith("channel.") and event in ("string", "number", "integer"):
            channel[prefix[8:]] = value
        elif prefix.startswith("guild.") and event in ("string", "number", "integer"):
            guild[prefix[6:]] = value
        elif prefix == "messages" and event == "start_array":
            channel.setdefault("_has_messages", True)
    if not channel.pop("_has_messages", False):
        raise ChatExportError(f"{path}: not a DiscordChatExporter export (no 'messages' list)")
    return {"channel": channel, "guild": guild, "authors": authors, "author_of": author_of,
            "replies": replies, "count": count}


class DiscordReader(Reader):
    name = "discord"
    people_label = "authors"
    me_hint = "your Discord name or id"

    def sniff(self, path: Path, head: str) -> bool:
        """A JSON object with DiscordChatExporter's top-level ``guild`` and ``channel`` keys."""
        return {"guild", "channel"} <= json_keys(head)

    def chats(self, path: Path) -> Iterator[Chat]:
        data = _first_pass(path)
        channel = data["channel"]
        people = {}
        for author_id, author in data["authors"].items():
            names = {n for n in (author.get("name"), author.get("nickname")) if isinstance(n, str) and n}
            if not author.get("isBot"):
                people[author_id] = names
        data["source"] = _PART_RE.sub("", path_text(path))
        chat = Chat(title=str(channel.get("name") or ""), is_group=channel.get("type") != DIRECT,
                    people=people, data=data)
        yield chat

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str] | None:
        if me_ids:
            return me_ids
        if chat.data["channel"].get("type") == DIRECT:
            others = [i for i, names in chat.people.items() if not any(same_person(n, chat.title) for n in names)]
            if len(others) == 1:
                return frozenset(others)
            if not others and chat.people:
                return NOBODY  # only the other person wrote
        return None

    def owner_problem(self, chat: Chat) -> str:
        kind = chat.data["channel"].get("type")
        where = "group DM" if kind == DIRECT_GROUP else "DM" if kind == DIRECT else "server channel"
        return f"a Discord {where} export does not say which author is you"

    def shown_names(self, chat: Chat) -> list[str]:
        return [_display(chat.data["authors"][i]) for i in chat.people]

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, object]]:
        data = chat.data
        kind = data["channel"].get("type")
        if kind in (DIRECT, DIRECT_GROUP):
            data["convert"] = _Direct(chat, data)
        elif chat.mine:
            data["convert"] = _Server(chat, data)
        else:  # I am not known, or never wrote here: the channel whole, as a group chat
            data["convert"] = _Whole(chat, data)
        yield from enumerate(json_items(path, "messages.item", "DiscordChatExporter", chat.notes))

    def where(self, chat: Chat, where: int) -> str:
        return f"messages[{where}]: "

    def message(self, msg: object, chat: Chat, mine: frozenset[str]) -> Message | None:
        if not isinstance(msg, dict):
            raise TypeError("message is not an object")
        return chat.data["convert"](msg, mine)


def _base(msg: dict) -> tuple:
    author = _author(msg)
    stamp = local_from_iso(msg["timestamp"])
    content = msg.get("content") or ""
    if not isinstance(content, str):
        raise TypeError("content is not a string")
    if author.get("isBot") or msg.get("type", "Default") not in _CHAT_TYPES:
        kind = "system"
    elif not content.strip():
        kind = "media" if (msg.get("attachments") or msg.get("stickers") or msg.get("embeds")) else "system"
    else:
        kind = "text"
    return author, stamp, content, kind


class _Direct:
    """A DM or group DM: every message, chat = the channel's name (else the other person's)."""

    def __init__(self, chat: Chat, data: dict):
        self.is_group = data["channel"].get("type") == DIRECT_GROUP
        self.chat = chat.title
        self.source = data["source"]

    def __call__(self, msg: dict, mine: frozenset[str]) -> Message:
        author, stamp, content, kind = _base(msg)
        author_id = str(author.get("id"))
        if not self.chat and author_id not in mine:
            self.chat = _display(author)
        return Message(sender=_display(author), text=content, timestamp=stamp, chat=self.chat or "Discord DM",
                       from_me=author_id in mine, kind=kind, is_group=self.is_group, source=self.source)


def _place(data: dict) -> str:
    channel, guild = data["channel"], data["guild"]
    return f"{guild.get('name') or 'Discord'} #{channel.get('name') or channel.get('id') or '?'}"


class _Whole:
    """A server channel whose owner is unknown: every message, as one group chat."""

    def __init__(self, chat: Chat, data: dict):
        self.place, self.source = _place(data), data["source"]

    def __call__(self, msg: dict, mine: frozenset[str]) -> Message:
        author, stamp, content, kind = _base(msg)
        return Message(sender=_display(author), text=content, timestamp=stamp, chat=self.place, from_me=False,
                       kind=kind, is_group=True, source=self.source)


class _Server:
    """A server channel I wrote in: only the exchanges I am part of, one chat per partner."""

    def __init__(self, chat: Chat, data: dict):
        self.place, self.source = _place(data), data["source"]
        self.authors, self.author_of = data["authors"], data["author_of"]
        mine = chat.mine
        self.mine_ids = {m for m, a in self.author_of.items() if a in mine}
        self.reply_to_mine: dict[str, str] = {}  # id of my message -> id of the first author replying to it
        self.replied_by_me: set[str] = set()
        for msg_id, author_id, ref in data["replies"]:
            if ref in self.mine_ids and author_id not in mine and not self.authors[author_id].get("isBot"):
                self.reply_to_mine.setdefault(ref, author_id)
            if msg_id in self.mine_ids:
                self.replied_by_me.add(ref)

    def __call__(self, msg: dict, mine: frozenset[str]) -> Message | None:
        msg_id = str(msg.get("id"))
        target = _reference(msg)
        partner = None
        if msg_id in self.mine_ids:
            other_id = self.author_of.get(target) if target else None
            other = self.authors.get(other_id) if other_id is not None else None
            if other is not None and other_id not in mine and not other.get("isBot"):
                partner = other
            elif msg_id in self.reply_to_mine:
                partner = self.authors[self.reply_to_mine[msg_id]]
        elif msg_id in self.replied_by_me or target in self.mine_ids:
            partner = _author(msg)
            if partner.get("isBot"):
                return None
        else:
            return None  # neither mine nor part of an exchange with me
        author, stamp, content, kind = _base(msg)
        chat = f"{self.place} · {_display(partner)}" if partner is not None else self.place
        return Message(sender=_display(author), text=content, timestamp=stamp, chat=chat,
                       from_me=msg_id in self.mine_ids, kind=kind, is_group=partner is None, source=self.source)


def _reference(msg: dict) -> str | None:
    ref = msg.get("reference")
    if isinstance(ref, dict) and ref.get("messageId") is not None:
        return str(ref["messageId"])
    return None


READER = DiscordReader()
sniff = READER.sniff
read = READER.read

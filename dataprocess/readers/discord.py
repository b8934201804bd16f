"""Reader for DiscordChatExporter's JSON export (one channel per file).

Shape: ``{"guild": {"id", "name"}, "channel": {"id", "type", "name", ...}, "messages": [{"id",
"type", "timestamp", "content", "author": {"id", "name", "nickname", "isBot"}, "attachments",
"stickers", "reference": {"messageId"}}, ...]}``. The file is one JSON document, loaded whole.

* Direct messages (channel type ``DirectTextChat``, one-on-one, chat = the channel's name, which
  is the other person's; ``DirectGroupTextChat``, a group) are read whole. Messages by bots and
  message types other than ``Default``/``Reply`` (calls, pins, members joining, ...) ->
  ``system``; attachments or stickers without content -> ``media``.
* **Server channels** are not conversations with me, so only the exchanges I am part of are
  kept: my messages, the messages I replied to and the messages that replied to mine (through
  ``reference.messageId``); everything else, bots included, is left out. Each exchange is
  presented as a one-on-one chat named ``"<server> #<channel> · <partner>"``, so that a
  partner's message and my reply to it land next to each other and can form a training pair;
  my messages that are neither replies nor replied to go to ``"<server> #<channel>"``, a group chat.
* Timestamps (ISO 8601 with an offset) are converted to naive local time.

**Who is me**: ``--me`` matched against each author's id, name and nickname; without it, a
one-on-one DM's other author than the person the channel is named after. A group DM or a
server channel needs ``--me`` (ChatExportError lists the authors). A malformed message is skipped
and recorded with its index in ``messages``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from ._common import json_keys, load_json, local_from_iso, names_list, note_skip, same_name

DIRECT = "DirectTextChat"
DIRECT_GROUP = "DirectGroupTextChat"
_CHAT_TYPES = {"Default", "Reply"}


def sniff(path: Path, head: str) -> bool:
    """A JSON object with DiscordChatExporter's top-level ``guild`` and ``channel`` keys."""
    return {"guild", "channel"} <= json_keys(head)


def _author(msg: dict) -> dict:
    author = msg.get("author")
    if not isinstance(author, dict):
        raise TypeError("message has no author object")
    return author


def _display(author: dict) -> str:
    return author.get("nickname") or author.get("name") or str(author.get("id", ""))


def _is_me(author: dict, me: str) -> bool:
    return str(author.get("id")) == me.strip() or same_name(author.get("name"), me) or \
        same_name(author.get("nickname"), me)


def _my_id(path: Path, channel: dict, messages: list, me: str | None) -> str | None:
    authors: dict[str, dict] = {}
    for msg in messages:
        if isinstance(msg, dict) and isinstance(msg.get("author"), dict):
            authors.setdefault(str(msg["author"].get("id")), msg["author"])
    if me:
        for author_id, author in authors.items():
            if _is_me(author, me):
                return author_id
    people = {i: a for i, a in authors.items() if not a.get("isBot")}
    if channel.get("type") == DIRECT:
        title = channel.get("name")
        others = [i for i, a in people.items()
                  if not (same_name(a.get("name"), title) or same_name(a.get("nickname"), title))]
        if len(others) == 1:
            return others[0]
        if not others and people:
            return None  # only the other person wrote
    given = f"--me {me!r} is none of them" if me else "pass --me with your Discord name or id"
    where = "group DM" if channel.get("type") == DIRECT_GROUP else "server channel" \
        if channel.get("type") != DIRECT else "DM"
    raise ChatExportError(f"{path}: a Discord {where} export does not say which author is you; {given} "
                      f"(authors: {names_list(_display(a) for a in people.values())})")


def read(path: Path, me: str | None = None, skipped: list | None = None) -> Iterator[Message]:
    """Yield the messages of one DiscordChatExporter JSON file, in file order."""
    path = Path(path)
    data = load_json(path, "DiscordChatExporter")
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ChatExportError(f"{path}: not a DiscordChatExporter export (no 'messages' list)")
    channel = data.get("channel") or {}
    guild = data.get("guild") or {}
    messages = data["messages"]
    my_id = _my_id(path, channel, messages, me)
    if channel.get("type") in (DIRECT, DIRECT_GROUP):
        yield from _read_direct(path, channel, messages, my_id, skipped)
    else:
        yield from _read_server(path, guild, channel, messages, my_id, skipped)


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


def _read_direct(path: Path, channel: dict, messages: list, my_id: str | None,
                 skipped: list | None) -> Iterator[Message]:
    is_group = channel.get("type") == DIRECT_GROUP
    chat = channel.get("name") or ""
    source = str(path)
    for index, msg in enumerate(messages):
        try:
            if not isinstance(msg, dict):
                raise TypeError("message is not an object")
            author, stamp, content, kind = _base(msg)
            author_id = str(author.get("id"))
            if not chat and author_id != my_id:
                chat = _display(author)
            yield Message(sender=_display(author), text=content, timestamp=stamp, chat=chat or "Discord DM",
                          from_me=author_id == my_id, kind=kind, is_group=is_group, source=source)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            note_skip(skipped, path, index, f"messages[{index}]: {exc}")


def _reference(msg: dict) -> str | None:
    ref = msg.get("reference")
    if isinstance(ref, dict) and ref.get("messageId") is not None:
        return str(ref["messageId"])
    return None


def _read_server(path: Path, guild: dict, channel: dict, messages: list, my_id: str | None,
                 skipped: list | None) -> Iterator[Message]:
    place = f"{guild.get('name') or 'Discord'} #{channel.get('name') or channel.get('id') or '?'}"
    source = str(path)
    author_of: dict[str, dict] = {}
    mine: set[str] = set()
    reply_to_mine: dict[str, str] = {}   # id of my message -> id of the first author replying to it
    for msg in messages:
        if isinstance(msg, dict) and isinstance(msg.get("author"), dict) and msg.get("id") is not None:
            author_of[str(msg["id"])] = msg["author"]
            if str(msg["author"].get("id")) == my_id:
                mine.add(str(msg["id"]))
    for msg in messages:
        if isinstance(msg, dict) and isinstance(msg.get("author"), dict):
            target = _reference(msg)
            if target in mine and str(msg["author"].get("id")) != my_id and not msg["author"].get("isBot"):
                reply_to_mine.setdefault(target, str(msg["id"]))
    replied_by_me = {_reference(m) for m in messages
                     if isinstance(m, dict) and str(m.get("id")) in mine and _reference(m)}
    for index, msg in enumerate(messages):
        try:
            if not isinstance(msg, dict):
                raise TypeError("message is not an object")
            msg_id = str(msg.get("id"))
            target = _reference(msg)
            partner = None
            if msg_id in mine:
                other = author_of.get(target) if target else None
                if other is not None and str(other.get("id")) != my_id and not other.get("isBot"):
                    partner = other
                elif msg_id in reply_to_mine:
                    partner = author_of[reply_to_mine[msg_id]]
            elif msg_id in replied_by_me or target in mine:
                partner = _author(msg)
                if partner.get("isBot"):
                    continue
            else:
                continue  # neither mine nor part of an exchange with me
            author, stamp, content, kind = _base(msg)
            chat = f"{place} · {_display(partner)}" if partner is not None else place
            yield Message(sender=_display(author), text=content, timestamp=stamp, chat=chat,
                          from_me=msg_id in mine, kind=kind, is_group=partner is None, source=source)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            note_skip(skipped, path, index, f"messages[{index}]: {exc}")

"""Reader for Telegram Desktop's JSON export (``result.json``); the HTML export is ``telegram_html``.

Three shapes are read: one chat (``{"name", "type", "id", "messages": [...]}``), a minimal one
(only ``messages``, each with ``type``, ``date_unixtime``, ``from``, ``text``), and the whole
account (``{"about", "personal_information": {"user_id", ...}, "chats": {"list": [chat, ...]},
"left_chats": {"list": [...]}}``, ``personal_information`` being optional). The file is streamed
(ijson): a first pass of parser events learns each chat's name, type, id, senders and message
count; the second builds one message at a time. A file of any size reads in bounded memory.

* ``text`` is a string or an array of strings and entity objects (``{"type": "bold", "text":
  ...}``, ``link``, ``text_link``, ``mention``, ``mention_name``, ``hashtag``, ``code``,
  ``custom_emoji``, ...): the pieces are joined as Telegram shows them, i.e. each entity's visible
  ``text`` (a ``text_link``'s hidden URL is not shown, so it is not added).
* ``type: "service"`` (group created, members invited, calls, pins, ...) -> ``system``, the
  sender being the ``actor``.
* Photos, files, stickers, voice/video messages, animations, locations, contacts, polls
  (``photo``, ``file``, ``media_type``, ``location_information``, ``contact_information``,
  ``poll``) -> ``media`` unless they carry a caption, which is kept as ``text``.
* Forwarded messages (``forwarded_from``) are someone else's words passed on, so they are
  kept as ``media`` (shared content, like a shared link or file) and never become training text.
* Reactions are attached to messages (``reactions``), not messages of their own, and are ignored.
* Timestamps: ``date_unixtime`` (converted to naive local time) is preferred over ``date``
  (the exporting computer's local time, naive).
* Chats: ``personal_chat`` is one-on-one (chat = the contact's name); ``private_group``,
  ``public_group``, ``private_supergroup`` and ``public_supergroup`` are groups (chat = title).
  Channels (broadcasts), ``saved_messages`` (notes to self) and ``bot_chat`` hold no
  conversation with a person and are left out. A minimal export is a group when more than two
  people wrote in it.

**Who is me**, in this order: ``personal_information.user_id`` (``from_id == "user<id>"``);
``--me`` (a name as ``from`` shows it, or a ``user<id>``); in an account export without
``personal_information``, the one ``from_id`` present in every personal chat; in a personal
chat, whose ``id`` is the contact's user id, every other sender. A malformed message is skipped
and recorded with its index in ``messages``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from . import telegram_html as html
from ._common import json_events, json_items, json_keys, local_from_unix
from .base import NOBODY, Chat, Reader, path_text, same_person

PERSONAL = {"personal_chat"}
GROUPS = {"private_group", "public_group", "private_supergroup", "public_supergroup"}
SKIPPED_TYPES = {"saved_messages", "bot_chat", "private_channel", "public_channel"}
_TYPE_RE = re.compile(r'"type"\s*:\s*"(?:personal_chat|bot_chat|saved_messages|private_group|public_group'
                      r'|private_supergroup|public_supergroup|private_channel|public_channel)"')
_MEDIA_KEYS = ("photo", "file", "media_type", "location_information", "contact_information", "poll",
               "game_title", "place_name")


def text_of(value) -> str:
    """A message's ``text``: a string, or an array of strings and entities joined as shown."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                parts.append(str(part.get("text", "")))
            else:
                raise TypeError(f"text entity of type {type(part).__name__}")
        return "".join(parts)
    raise TypeError(f"text of type {type(value).__name__}")


_SECTIONS = ("chats.list.item", "left_chats.list.item", "")  # where a chat object sits in the file


@dataclass
class _ChatInfo:
    """What the first pass learns about one chat."""

    section: str
    name: str | None = None
    type: str | None = None
    id: object = None
    count: int = 0
    people: dict[str, set[str]] = field(default_factory=dict)


def _first_pass(path: Path) -> tuple[list[_ChatInfo], str | None, bool]:
    """The chats of the file (in order), the owner's id from ``personal_information``, and whether
    the file is a whole-account export. Also checks the JSON is whole and not nested absurdly."""
    table: dict[str, tuple[str, str]] = {}
    for section in _SECTIONS:
        dot = section + "." if section else ""
        table[section] = (section, "chat")
        for key in ("name", "type", "id"):
            table[dot + key] = (section, key)
        table[dot + "messages.item"] = (section, "message")
        for key in ("from", "from_id", "actor", "actor_id"):
            table[f"{dot}messages.item.{key}"] = (section, key)
    chats: list[_ChatInfo] = []
    current: dict[str, _ChatInfo] = {}
    my_id = None
    account = False
    sender_id = sender_name = None
    lookup = table.get
    for prefix, event, value in json_events(path, "Telegram"):
        found = lookup(prefix)
        if found is None:
            if prefix == "personal_information.user_id" and value is not None:
                my_id = f"user{value}"
            continue
        section, what = found
        if what == "chat":
            if event == "map_key":
                if section == "" and value in ("chats", "about", "personal_information"):
                    account = True
            elif event == "start_map":
                current[section] = _ChatInfo(section)
            elif event == "end_map" and section in current:
                chats.append(current.pop(section))
            continue
        info = current.get(section)
        if info is None:
            continue
        if what == "message":
            if event == "start_map":
                sender_id = sender_name = None
            elif event == "end_map":
                if sender_id is None and sender_name:
                    sender_id = _name_id(sender_name)  # a minimal export: no ids, names only
                if sender_id is not None:
                    names = info.people.setdefault(str(sender_id), set())
                    if sender_name:
                        names.add(str(sender_name))
            if event not in ("end_map", "end_array", "map_key"):
                info.count += 1
        elif event in ("string", "number", "integer", "double"):
            if what in ("from_id", "actor_id"):
                sender_id = value
            elif what in ("from", "actor"):
                sender_name = value
            else:
                setattr(info, what, value)
    if account:
        chats = [c for c in chats if c.section != ""]
    else:
        chats = [c for c in chats if c.section == ""]
        if not chats or (chats[0].count == 0 and chats[0].name is None):
            raise ChatExportError(f"{path}: not a Telegram export (no 'messages' and no 'chats')")
    return chats, my_id, account


def _account_owner(chats: list[_ChatInfo]) -> str | None:
    """The one sender id present in every personal chat of an account export, if there is one."""
    common: set[str] | None = None
    for info in chats:
        if info.type in PERSONAL and info.people:
            ids = set(info.people)
            common = ids if common is None else common & ids
    if common is not None and len(common) == 1:
        return next(iter(common))
    return None


class TelegramReader(Reader):
    name = "telegram"
    people_label = "senders"
    reads_folders = True

    def sniff(self, path: Path, head: str) -> bool:
        """JSON with a Telegram chat type or Telegram's message keys, or an account export's keys;
        or a ``messagesN.html`` page of Telegram Desktop's HTML export."""
        if html.page_number(Path(path)) is not None:
            return html.looks_like_page(head)
        keys = json_keys(head)
        if "personal_information" in keys and ("about" in keys or "chats" in keys):
            return True
        if {"about", "chats"} <= keys and "list" in keys:
            return True
        if {"name", "type", "id"} <= keys and _TYPE_RE.search(head) is not None:
            return True
        return "messages" in keys and ("date_unixtime" in keys or "from_id" in keys) and "guild" not in keys

    def sniff_dir(self, path: Path) -> bool:
        """A folder of Telegram Desktop's HTML export (one chat's, or the whole account's)."""
        return bool(html.chat_folders(path))

    def chats(self, path: Path) -> Iterator[Chat]:
        if path.is_dir() or path.suffix.lower() == ".html":
            yield from self._html_chats(path)
            return
        infos, my_id, account = _first_pass(path)
        in_every = _account_owner(infos) if account and my_id is None else None
        streams = {}
        repairs: list[str] = []  # characters the stream repaired (one list: the chats share streams)
        for info in infos:
            if info.section not in streams:
                prefix = f"{info.section}.messages.item" if info.section else "messages.item"
                streams[info.section] = json_items(path, prefix, "Telegram", repairs)
            items = streams[info.section]
            if info.type in SKIPPED_TYPES:
                for _ in range(info.count):
                    next(items, None)
                continue
            is_group = info.type in GROUPS or (info.type is None and len(info.people) > 2)
            title = info.name or (f"Telegram chat {info.id}" if info.id is not None else path_text(path.parent.name) or "Telegram")
            chat = Chat(title=title, is_group=is_group, people=info.people, notes=repairs,
                        data={"info": info, "items": items, "my_id": my_id, "in_every": in_every, "source": path_text(path)})
            yield chat

    def _html_chats(self, path: Path) -> Iterator[Chat]:
        folders = html.chat_folders(path) if path.is_dir() else [None]
        if not folders:
            raise ChatExportError(f"{path}: a folder without Telegram's messages.html")
        for folder in folders:
            records: list = []
            name = None
            for page in (html.pages(folder) if folder is not None else [path]):
                page_name, page_records = html.read_page(page)
                name = name or page_name
                records.extend(page_records)
            people = {r.sender: {r.sender} for r in records if r.kind == "default" and r.sender}
            title = name or path_text((folder or path.parent).name)
            yield Chat(title=title, is_group=html.is_group(records, set(people)), people=people,
                       data={"kind": "html", "records": records, "source": path_text(folder or path), "last": None,
                             "page": path})

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str] | None:
        data = chat.data
        if data.get("kind") == "html":  # senders by name only: the contact is the chat's name
            if me_ids:
                return me_ids
            others = [p for p in chat.people if not same_person(p, chat.title)]
            if not chat.is_group and len(others) < len(chat.people):
                return frozenset(others) if len(others) == 1 else NOBODY if not others else None
            return None
        if data["my_id"]:
            return frozenset({data["my_id"]})
        if me_ids:
            return me_ids
        if data["in_every"]:
            return frozenset({data["in_every"]} & set(chat.people))
        info: _ChatInfo = data["info"]
        if info.type in PERSONAL:
            contact = f"user{info.id}"
            if contact in chat.people:
                return frozenset(set(chat.people) - {contact})
            others = {i for i, names in chat.people.items() if not any(same_person(n, info.name) for n in names)}
            if len(others) <= 1:
                return frozenset(others)
        return None

    def owner_problem(self, chat: Chat) -> str:
        return f"chat {chat.title!r} does not say which sender is you"

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, object]]:
        if chat.data.get("kind") == "html":
            for record in chat.data["records"]:
                chat.data["page"] = record.page
                yield record.index, record
            return
        items = chat.data["items"]
        for index in range(chat.data["info"].count):
            yield index, next(items)

    def record_file(self, path: Path, chat: Chat) -> Path:
        return chat.data["page"] if chat.data.get("kind") == "html" else path

    def where(self, chat: Chat, where: int) -> str:
        if chat.data.get("kind") == "html":
            return f"chat {chat.title!r}, message {where} of the page: "
        return f"chat {chat.title!r}, messages[{where}]: "

    def message(self, msg: object, chat: Chat, mine: frozenset[str]) -> Message | None:
        data = chat.data
        if data.get("kind") == "html":
            found = html.message(msg, chat.title, chat.is_group, mine, data["source"], data["last"])
            if found is not None and found.kind != "system":
                data["last"] = found.timestamp
            return found
        return _message(msg, chat.title, chat.is_group, mine, data["source"])


def _name_id(name: str) -> str:
    """The sender id of a message that has a name but no ``from_id`` (minimal exports)."""
    return f"name:{name}"


def _sender_id(msg: dict, id_key: str, name_key: str) -> str:
    if msg.get(id_key) is not None:
        return str(msg[id_key])
    return _name_id(msg[name_key]) if msg.get(name_key) else "None"


def _timestamp(msg: dict) -> datetime:
    if msg.get("date_unixtime") not in (None, ""):
        return local_from_unix(int(msg["date_unixtime"]))
    return datetime.fromisoformat(msg["date"]).replace(tzinfo=None)


def _message(msg: dict, chat: str, is_group: bool, mine: frozenset[str], source: str) -> Message:
    if not isinstance(msg, dict):
        raise TypeError("message is not an object")
    stamp = _timestamp(msg)
    text = text_of(msg.get("text"))
    if msg.get("type") == "service":
        sender = msg.get("actor") or ""
        if not text:
            text = str(msg.get("action") or "")
        return Message(sender=sender, text=text, timestamp=stamp, chat=chat,
                       from_me=_sender_id(msg, "actor_id", "actor") in mine, kind="system", is_group=is_group, source=source)
    if msg.get("type") != "message":
        raise ValueError(f"unknown message type {msg.get('type')!r}")
    sender = msg.get("from") or "Deleted Account"
    from_me = _sender_id(msg, "from_id", "from") in mine
    if msg.get("forwarded_from") is not None or msg.get("saved_from") is not None:
        kind = "media"
    elif any(key in msg for key in _MEDIA_KEYS) and not text.strip():
        kind = "media"
    else:
        kind = "text"
    return Message(sender=sender, text=text, timestamp=stamp, chat=chat, from_me=from_me, kind=kind,
                   is_group=is_group, source=source)


READER = TelegramReader()
sniff = READER.sniff
read = READER.read

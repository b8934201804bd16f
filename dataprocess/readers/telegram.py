"""Reader for Telegram Desktop's JSON export (``result.json``).

Two shapes are read: one chat (``{"name", "type", "id", "messages": [...]}``) and the whole
account (``{"about", "personal_information": {"user_id", ...}, "chats": {"list": [chat, ...]},
"left_chats": {"list": [...]}}``). The file is one JSON document and is loaded whole.

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
  conversation with a person and are left out.

**Who is me.** In the account export ``personal_information.user_id`` identifies me
(``from_id == "user<id>"``). In a one-chat export, ``--me`` (a name as ``from`` shows it, or a
``user<id>``) decides; else, in a personal chat, whose ``id`` is the contact's user id, every
other sender is me; a group export without a matching ``--me`` raises ChatExportError listing
the senders. A malformed message is skipped and recorded with its index in ``messages``.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from ._common import json_keys, load_json, local_from_unix, note_skip, same_name, unknown_me

PERSONAL = {"personal_chat"}
GROUPS = {"private_group", "public_group", "private_supergroup", "public_supergroup"}
SKIPPED_TYPES = {"saved_messages", "bot_chat", "private_channel", "public_channel"}
_TYPE_RE = re.compile(r'"type"\s*:\s*"(?:personal_chat|bot_chat|saved_messages|private_group|public_group'
                      r'|private_supergroup|public_supergroup|private_channel|public_channel)"')
_MEDIA_KEYS = ("photo", "file", "media_type", "location_information", "contact_information", "poll",
               "game_title", "place_name")


def sniff(path: Path, head: str) -> bool:
    """A JSON object with the one-chat keys and a Telegram chat type, or the account export's keys."""
    keys = json_keys(head)
    if "personal_information" in keys and ("about" in keys or "chats" in keys):
        return True
    return {"name", "type", "id"} <= keys and _TYPE_RE.search(head) is not None


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


def read(path: Path, me: str | None = None, skipped: list | None = None) -> Iterator[Message]:
    """Yield the messages of a Telegram export, chat by chat, in the order the file stores them."""
    path = Path(path)
    data = load_json(path, "Telegram")
    if not isinstance(data, dict):
        raise ChatExportError(f"{path}: not a Telegram export (the JSON is not an object)")
    my_id = None
    if "personal_information" in data:
        info = data.get("personal_information") or {}
        if info.get("user_id") is not None:
            my_id = f"user{info['user_id']}"
        chats = []
        for section in ("chats", "left_chats"):
            chats.extend((data.get(section) or {}).get("list") or [])
    elif "messages" in data:
        chats = [data]
    else:
        raise ChatExportError(f"{path}: not a Telegram export (no 'messages' and no 'chats')")
    for chat in chats:
        if not isinstance(chat, dict) or chat.get("type") in SKIPPED_TYPES:
            continue
        yield from _read_chat(path, chat, my_id, me, skipped)


def _my_ids(path: Path, chat: dict, messages: list, my_id: str | None, me: str | None) -> set[str]:
    if my_id:
        return {my_id}
    names: dict[str, str] = {}  # from_id -> name
    for msg in messages:
        if isinstance(msg, dict):
            sender_id = msg.get("from_id") or msg.get("actor_id")
            if sender_id:
                names.setdefault(str(sender_id), msg.get("from") or msg.get("actor") or "")
    if me:
        wanted = me.strip()
        mine = {i for i, n in names.items() if same_name(n, wanted) or i in (wanted, f"user{wanted}")}
        if mine:
            return mine
    if chat.get("type") in PERSONAL:
        contact = f"user{chat.get('id')}"
        if contact in names:
            return set(names) - {contact}
        others = {i for i, n in names.items() if not same_name(n, chat.get("name"))}
        if len(others) <= 1:
            return others
    raise unknown_me(path, f"chat {chat.get('name')!r} does not say which sender is you", names.values(), me,
                     label="senders")


def _read_chat(path: Path, chat: dict, my_id: str | None, me: str | None, skipped: list | None) -> Iterator[Message]:
    messages = chat.get("messages") or []
    kind_of_chat = chat.get("type")
    is_group = kind_of_chat in GROUPS
    title = chat.get("name") or f"Telegram chat {chat.get('id')}"
    mine = _my_ids(path, chat, messages, my_id, me)
    source = str(path)
    for index, msg in enumerate(messages):
        try:
            yield _message(msg, title, is_group, mine, source)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            note_skip(skipped, path, index, f"chat {title!r}, messages[{index}]: {exc}")


def _timestamp(msg: dict) -> datetime:
    if msg.get("date_unixtime") not in (None, ""):
        return local_from_unix(int(msg["date_unixtime"]))
    return datetime.fromisoformat(msg["date"]).replace(tzinfo=None)


def _message(msg: dict, chat: str, is_group: bool, mine: set[str], source: str) -> Message:
    if not isinstance(msg, dict):
        raise TypeError("message is not an object")
    stamp = _timestamp(msg)
    text = text_of(msg.get("text"))
    if msg.get("type") == "service":
        sender = msg.get("actor") or ""
        if not text:
            text = str(msg.get("action") or "")
        return Message(sender=sender, text=text, timestamp=stamp, chat=chat,
                       from_me=str(msg.get("actor_id")) in mine, kind="system", is_group=is_group, source=source)
    if msg.get("type") != "message":
        raise ValueError(f"unknown message type {msg.get('type')!r}")
    sender = msg.get("from") or "Deleted Account"
    from_me = str(msg.get("from_id")) in mine
    if msg.get("forwarded_from") is not None or msg.get("saved_from") is not None:
        kind = "media"
    elif any(key in msg for key in _MEDIA_KEYS) and not text.strip():
        kind = "media"
    else:
        kind = "text"
    return Message(sender=sender, text=text, timestamp=stamp, chat=chat, from_me=from_me, kind=kind,
                   is_group=is_group, source=source)

"""Reader for Facebook Messenger's JSON export (``messages/inbox/<thread>/message_N.json``).

Give it one ``message_N.json`` file (that file is read) or the thread's folder (every
``message_N.json`` in it is read). Each file is one JSON document, loaded whole (Facebook caps
them at a few thousand messages); a thread's files hold disjoint time ranges (``message_1.json``
the newest), so the folder is read from the highest N down, one file at a time, each file's
messages sorted by time: the messages come out oldest first without holding more than one file
in memory.

* Every string is repaired from Facebook's mojibake (UTF-8 bytes written as Latin-1 code
  points, ``cafÃ©`` -> ``café``): ``s.encode("latin-1").decode("utf-8")``, kept as it was when
  that fails (a string that was right already).
* ``content`` -> ``text``; ``photos``/``videos``/``gifs``/``sticker``/``audio_files``/``files``
  without content -> ``media``; a ``share`` with content is ``text`` (the link appended when the
  content does not include it), without content ``media``; ``is_unsent`` messages, calls
  (``type: Call``) and ``Subscribe``/``Unsubscribe`` (members added or leaving) -> ``system``;
  ``Reacted ❤ to your message`` lines -> ``reaction``. Lines Facebook writes in the sender's name
  (content starting with the sender's name or "You": ``X sent a photo.`` -> ``media``; ``X named
  the group …``, nickname and theme changes, calls, ``You unsent a message`` -> ``system``).
  Reactions attached to a message (``reactions``) are not messages of their own and are ignored.
* ``timestamp_ms`` is converted to naive local time.
* A thread is a group when ``thread_type`` is ``RegularGroup`` or it has more than two
  participants; the chat is the thread's ``title`` (the contact's name in a one-on-one thread).

**Who is me**, in this order: ``--me`` when it names a participant; the name in the export's
``profile_information.json`` (found beside the ``messages`` folder); in a one-on-one thread,
the participant who is not the title; the one participant present in every thread of the
inbox folder. Otherwise ChatExportError asks for ``--me`` and lists the participants.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from ._common import json_keys, load_json, local_from_unix
from .base import Chat, Reader, same_person

_FILE_RE = re.compile(r"message_(\d+)\.json$")
_MEDIA_KEYS = ("photos", "videos", "gifs", "sticker", "audio_files", "files")
# Lines Facebook writes in the sender's name (checked only on content starting with the sender or "You").
_SENT_MEDIA_RE = re.compile(
    r" sent (?:a photo|\d+ photos|a video|a GIF|a sticker|an? attachment|a voice message|an audio clip"
    r"|a file|a live location)\.?$")
_REACTION_RE = re.compile(r"(?:.{1,80} )?[Rr]eacted .{1,12} to (?:your|a|their|his|her) message\.?")
_SYSTEM_RE = re.compile(
    r" (?:named the group|changed the group photo|set (?:the|your|his|her|their) nickname|set the nickname"
    r"|set the (?:quick reaction|emoji)|changed the (?:chat )?theme|added .{1,80} to the group"
    r"|removed .{1,80} from the group|left the group|started a (?:video )?call|joined the (?:video )?call"
    r"|missed your call|missed a call|called you|ended the call|unsent a message|created the group)"
    r"|^You called |^You unsent a message")
_SYSTEM_TYPES = {"Call", "Subscribe", "Unsubscribe"}


def fix_mojibake(value):
    """Undo Facebook's Latin-1 mojibake in every string of a decoded JSON value."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            return value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return value
    if isinstance(value, list):
        return [fix_mojibake(v) for v in value]
    if isinstance(value, dict):
        return {k: fix_mojibake(v) for k, v in value.items()}
    return value


def _thread_files(folder: Path) -> list[Path]:
    found = []
    for child in folder.iterdir():
        match = _FILE_RE.fullmatch(child.name)
        if match and child.is_file():
            found.append((int(match.group(1)), child))
    return [p for _, p in sorted(found, key=lambda item: item[0], reverse=True)]


def _load(path: Path) -> dict:
    data = fix_mojibake(load_json(path, "Messenger"))
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ChatExportError(f"{path}: not a Messenger export (no 'messages' list)")
    return data


def _participants(data: dict) -> list[str]:
    return [p.get("name", "") if isinstance(p, dict) else str(p) for p in data.get("participants") or []]


def _profile_name(start: Path) -> str | None:
    """The owner's name from ``profile_information.json``, looked for above the thread folder."""
    for folder in list(start.parents)[:6]:
        for rel in ("personal_information/profile_information/profile_information.json",
                    "profile_information/profile_information.json", "profile_information.json"):
            candidate = folder / rel
            if candidate.is_file():
                try:
                    data = fix_mojibake(json.loads(candidate.read_text(encoding="utf-8")))
                    name = data["profile_v2"]["name"]["full_name"]
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                if isinstance(name, str) and name.strip():
                    return name.strip()
    return None


def _in_every_thread(thread_folder: Path, limit: int = 30) -> str | None:
    """The one participant of every thread in the inbox holding ``thread_folder``, if any."""
    inbox = thread_folder.parent
    common: set[str] | None = None
    seen = 0
    try:
        folders = sorted(p for p in inbox.iterdir() if p.is_dir())
    except OSError:
        return None
    for folder in folders[:limit]:
        first = folder / "message_1.json"
        if not first.is_file():
            continue
        try:
            names = set(_participants(fix_mojibake(json.loads(first.read_text(encoding="utf-8")))))
        except (OSError, ValueError, AttributeError):
            continue
        common = names if common is None else common & names
        seen += 1
    if common is not None and seen >= 2 and len(common) == 1:
        return next(iter(common))
    return None


class MessengerReader(Reader):
    name = "messenger"
    reads_folders = True

    def sniff(self, path: Path, head: str) -> bool:
        """A ``message_N.json`` with Messenger's keys (``participants``, ``sender_name``, ...)."""
        keys = json_keys(head)
        if "participants" not in keys:
            return False
        return bool(_FILE_RE.search(Path(path).name)) or bool(
            keys & {"sender_name", "thread_path", "thread_type", "is_still_participant"})

    def sniff_dir(self, path: Path) -> bool:
        """A Messenger thread folder: holds ``message_1.json`` (or another ``message_N.json``)."""
        return bool(_thread_files(path))

    def chats(self, path: Path) -> Iterator[Chat]:
        if path.is_dir():
            files = _thread_files(path)
            if not files:
                raise ChatExportError(f"{path}: a folder without message_N.json files (not a Messenger thread folder)")
            folder = path
        else:
            files, folder = [path], path.parent
        first = _load(files[0])
        participants = _participants(first)
        is_group = first.get("thread_type") == "RegularGroup" or len(participants) > 2
        yield Chat(title=first.get("title") or "", is_group=is_group, people={n: {n} for n in participants if n},
                   data={"files": files, "first": first, "folder": folder})

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str] | None:
        """``--me``; the name in ``profile_information.json``; in a one-on-one thread, the
        participant who is not the title; the one participant of every thread of the inbox."""
        if me_ids:
            return me_ids
        participants = list(chat.people)
        profile = _profile_name(chat.data["folder"])
        if profile:
            found = [n for n in participants if same_person(profile, n)]
            if found:
                return frozenset(found[:1])
        if not chat.is_group and chat.title and any(same_person(chat.title, n) for n in participants):
            others = [n for n in participants if not same_person(chat.title, n)]
            if len(others) == 1:
                return frozenset(others)
        common = _in_every_thread(chat.data["folder"])
        if common and common in participants:
            return frozenset({common})
        return None

    def owner_problem(self, chat: Chat) -> str:
        return "cannot tell which Messenger participant is you"

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, object]]:
        for number, file in enumerate(chat.data["files"]):
            data = chat.data["first"] if number == 0 else _load(file)
            chat.data["first"] = None  # one file in memory at a time
            participants = _participants(data)
            chat.data["file"] = file
            chat.data["chat"] = data.get("title") or next(
                (n for n in participants if n not in chat.mine), "") or file.parent.name
            chat.data["is_group"] = data.get("thread_type") == "RegularGroup" or len(participants) > 2
            yield from sorted(enumerate(data["messages"]), key=lambda item: _sort_key(item[1]))

    def message(self, msg: object, chat: Chat, mine: frozenset[str]) -> Message:
        data = chat.data
        return _message(msg, data["chat"], data["is_group"], mine, str(data["file"].parent))

    def record_file(self, path: Path, chat: Chat) -> Path:
        return chat.data["file"]  # a skip names the message_N.json it is in, not the thread folder


def _sort_key(msg: object) -> float:
    try:
        return float(msg["timestamp_ms"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return float("-inf")


def _message(msg: dict, chat: str, is_group: bool, mine: frozenset[str], source: str) -> Message:
    if not isinstance(msg, dict):
        raise TypeError("message is not an object")
    sender = msg["sender_name"]
    if not isinstance(sender, str):
        raise TypeError("sender_name is not a string")
    stamp = local_from_unix(int(msg["timestamp_ms"]) / 1000)
    content = msg.get("content")
    text = content if isinstance(content, str) else ""
    share = msg.get("share") if isinstance(msg.get("share"), dict) else None
    if msg.get("is_unsent") or msg.get("type") in _SYSTEM_TYPES:
        kind = "system"
    elif share is not None:
        link = share.get("link") or ""
        if text.strip():
            kind = "text"
            if link and link not in text:
                text = f"{text} {link}"
        else:
            kind, text = "media", link
    elif any(msg.get(key) for key in _MEDIA_KEYS) and not text.strip():
        kind = "media"
    elif not text.strip():
        kind = "system"
    elif _REACTION_RE.fullmatch(text.strip()):
        kind = "reaction"
    elif not (text.startswith(sender) or text.startswith("You ")):
        kind = "text"
    elif _SENT_MEDIA_RE.search(text):
        kind = "media"  # Facebook's own line about an attachment, written as the sender
    elif _SYSTEM_RE.search(text):
        kind = "system"
    else:
        kind = "text"
    return Message(sender=sender, text=text, timestamp=stamp, chat=chat, from_me=sender in mine, kind=kind,
                   is_group=is_group, source=source)


READER = MessengerReader()
sniff = READER.sniff
sniff_dir = READER.sniff_dir
read = READER.read

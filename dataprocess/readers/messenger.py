"""Reader for Facebook Messenger's JSON export (``messages/inbox/<thread>/message_N.json``).

Give it one ``message_N.json`` file (that file is read) or the thread's folder (every
``message_N.json`` in it is read). A thread's files hold disjoint time ranges (``message_1.json``
the newest), so the folder is read from the highest N down, one file at a time, each file's
messages in time order (ties in file order): the messages come out oldest first.

**Memory** is bounded whatever the size of a file; no file is loaded whole. Each file is
streamed twice with ijson (see ``_common``, which also refuses any single JSON value over
1 MiB): a first pass of parser events reads ``participants``, ``title`` and ``thread_type``
(Facebook writes ``title`` after ``messages`` in some exports) and notes whether the messages
are already oldest first; the second builds one message at a time (``messages.item``). A file
already oldest first is yielded as it streams. Facebook writes each file newest first, so its
messages are put in order by an external merge sort: runs of at most :data:`_RUN` messages (or
:data:`_RUN_BYTES` bytes of them, marshalled) are sorted in memory; when a file holds more than
one run, the runs are spooled to an anonymous temporary file (in the system's temporary folder,
never in the workspace; deleted when closed; about the file's size on disk while it is read) and
merged back :data:`_FAN_IN` runs at a time, each run read through a :data:`_BLOCK`-byte buffer.
So what is held is one run, or one buffer and one message per merged run, plus two offsets per
run, never the file: about 5 MB for a 50 MB file. A file of up to 8,192 messages and 4 MiB (most
real ones) is one run and touches no disk. Ties keep file order, as a stable sort of the whole
file would.

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

import heapq
import marshal
import math
import re
import struct
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from ..errors import ChatExportError
from ..message import Message
from ._common import json_events, json_items, json_keys, local_from_unix
from .base import Chat, Reader, path_text, same_person

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


_SCALARS = ("string", "number", "integer", "boolean", "null")


def _key(value) -> float:
    """The sort key of a ``timestamp_ms`` value: its float, -inf when it has none (NaN included,
    so that the order is total; such a message is skipped as malformed anyway)."""
    try:
        key = float(value)
    except (TypeError, ValueError, OverflowError):
        return -math.inf
    return -math.inf if key != key else key


def _sort_key(msg: object) -> float:
    try:
        return _key(msg["timestamp_ms"])  # type: ignore[index]
    except (KeyError, TypeError):
        return -math.inf


def _scan(path: Path) -> dict:
    """A first pass of parser events over a ``message_N.json``: its participants, title and thread
    type (mojibake repaired), and whether its messages are already oldest first."""
    participants: list[str] = []
    title = thread_type = None
    has_messages = False
    ascending = True
    last = key = -math.inf
    for prefix, event, value in json_events(path, "Messenger"):
        if prefix == "messages.item.timestamp_ms":
            if event in _SCALARS:
                key = _key(fix_mojibake(value))
            elif event in ("start_map", "start_array"):
                key = -math.inf
        elif prefix == "messages.item":
            if event == "start_map" or event == "start_array":
                key = -math.inf
            elif event != "map_key":  # the end of an item (or an item that is not an object)
                if event in _SCALARS:
                    key = -math.inf
                if key < last:
                    ascending = False
                last = key
        elif prefix == "messages":
            if event == "start_array":
                has_messages = True
        elif prefix == "participants.item":
            if event == "start_map" or event == "start_array":
                participants.append("")
            elif event in _SCALARS:
                participants.append(fix_mojibake(str(value)))
        elif prefix == "participants.item.name":
            if event == "string" and participants:
                participants[-1] = fix_mojibake(value)
        elif prefix == "title" and event == "string":
            title = fix_mojibake(value)
        elif prefix == "thread_type" and event == "string":
            thread_type = value
    if not has_messages:
        raise ChatExportError(f"{path}: not a Messenger export (no 'messages' list)")
    return {"participants": participants, "title": title, "thread_type": thread_type, "ascending": ascending}


def _names_in(path: Path) -> list[str] | None:
    """The participants of a ``message_N.json`` (streamed, stopping after them); None when unreadable."""
    names: list[str] = []
    try:
        for prefix, event, value in json_events(path, "Messenger"):
            if prefix == "participants.item.name" and event == "string":
                names.append(fix_mojibake(value))
            elif prefix == "participants.item" and event == "string":
                names.append(fix_mojibake(value))
            elif prefix == "participants" and event == "end_array":
                return names
    except (OSError, ChatExportError):
        return None
    return names


def _profile_name(start: Path) -> str | None:
    """The owner's name from ``profile_information.json``, looked for above the thread folder."""
    for folder in list(start.parents)[:6]:
        for rel in ("personal_information/profile_information/profile_information.json",
                    "profile_information/profile_information.json", "profile_information.json"):
            candidate = folder / rel
            if candidate.is_file():
                try:
                    name = next((value for prefix, event, value in json_events(candidate, "Facebook profile")
                                 if prefix == "profile_v2.name.full_name" and event == "string"), None)
                except (OSError, ChatExportError):
                    continue
                name = fix_mojibake(name)
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
        names = _names_in(first)
        if names is None:
            continue
        common = set(names) if common is None else common & set(names)
        seen += 1
    if common is not None and seen >= 2 and len(common) == 1:
        return next(iter(common))
    return None


# ---------------------------------------------------------------- oldest first, in bounded memory

#: Messages sorted in memory at a time (and the most bytes of them, marshalled).
_RUN = 8192
_RUN_BYTES = 4 << 20
#: Sorted runs merged at once, and the bytes each run's reader buffers while merging.
_FAN_IN = 32
_BLOCK = 1 << 16
#: A spooled message: its sort key, its index in the file, the length of its marshalled form.
_HEAD = struct.Struct("<dqQ")

_Entry = tuple[float, int, bytes]


def _oldest_first(items: Iterable[tuple[int, object]]) -> Iterator[tuple[int, object]]:
    """``(index, message)`` pairs sorted by (time, index): an external merge sort (module docstring).

    A message is held marshalled (``marshal`` is exact for JSON's values and reads back only what
    this function wrote to its own anonymous temporary file)."""
    spools: list[IO[bytes]] = []
    try:
        runs: list[tuple[int, int]] = []
        batch: list[_Entry] = []
        size = 0
        for index, msg in items:
            payload = marshal.dumps(msg)
            batch.append((_sort_key(msg), index, payload))
            size += len(payload)
            if len(batch) >= _RUN or size >= _RUN_BYTES:
                if not spools:
                    spools.append(tempfile.TemporaryFile())
                batch.sort()
                runs.append(_write_run(spools[-1], batch))
                batch, size = [], 0
        batch.sort()
        if not spools:  # the whole file was one run
            for _, index, payload in batch:
                yield index, marshal.loads(payload)
            return
        if batch:
            runs.append(_write_run(spools[-1], batch))
        del batch
        while len(runs) > _FAN_IN:  # merge groups of runs into a new spool until few are left
            source = spools[-1]
            spools.append(tempfile.TemporaryFile())
            runs = [_write_run(spools[-1], heapq.merge(*(_read_run(source, run) for run in runs[at:at + _FAN_IN])))
                    for at in range(0, len(runs), _FAN_IN)]
            spools.pop(-2).close()
        for _, index, payload in heapq.merge(*(_read_run(spools[-1], run) for run in runs)):
            yield index, marshal.loads(payload)
    finally:
        for spool in spools:
            spool.close()


def _write_run(spool: IO[bytes], entries: Iterable[_Entry]) -> tuple[int, int]:
    """Append sorted entries to the spool; the run's (start, end) byte offsets."""
    spool.seek(0, 2)
    start = spool.tell()
    for key, index, payload in entries:
        spool.write(_HEAD.pack(key, index, len(payload)))
        spool.write(payload)
    return start, spool.tell()


def _read_run(spool: IO[bytes], run: tuple[int, int]) -> Iterator[_Entry]:
    """The entries of one run, read through a buffer of about :data:`_BLOCK` bytes (the readers of
    several runs share the spool: each seeks to its own position before it reads)."""
    pos, end = run
    buf, at = b"", 0
    while at < len(buf) or pos < end:
        need = _HEAD.size
        if len(buf) - at >= need:
            key, index, length = _HEAD.unpack_from(buf, at)
            need += length
            if len(buf) - at >= need:
                yield key, index, buf[at + _HEAD.size:at + need]
                at += need
                continue
        spool.seek(pos)
        more = spool.read(min(end - pos, max(_BLOCK, need - (len(buf) - at))))
        if not more:
            raise OSError("the spool of a Messenger file ended early")
        buf, at, pos = buf[at:] + more, 0, pos + len(more)


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
        first = _scan(files[0])
        participants = first["participants"]
        is_group = first["thread_type"] == "RegularGroup" or len(participants) > 2
        yield Chat(title=first["title"] or "", is_group=is_group, people={n: {n} for n in participants if n},
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
            info = chat.data["first"] if number == 0 else _scan(file)
            participants = info["participants"]
            chat.data["file"] = file
            chat.data["chat"] = info["title"] or next(
                (n for n in participants if n not in chat.mine), "") or path_text(file.parent.name)
            chat.data["is_group"] = info["thread_type"] == "RegularGroup" or len(participants) > 2
            items = ((index, fix_mojibake(msg)) for index, msg in
                     enumerate(json_items(file, "messages.item", "Messenger", chat.notes)))
            yield from items if info["ascending"] else _oldest_first(items)

    def message(self, msg: object, chat: Chat, mine: frozenset[str]) -> Message:
        data = chat.data
        return _message(msg, data["chat"], data["is_group"], mine, path_text(data["file"].parent))

    def record_file(self, path: Path, chat: Chat) -> Path:
        return chat.data["file"]  # a skip names the message_N.json it is in, not the thread folder


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

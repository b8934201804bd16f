"""Reader for Facebook Messenger's and Instagram's JSON exports, classic and end-to-end encrypted.

Three layouts of one family, all format ``messenger`` (one reader: the same keys, the same
mojibake, the same rules):

* **Messenger, classic** (``your_activity/messages/inbox/<thread>/message_N.json``) and
  **Instagram DMs** (``your_instagram_activity/messages/inbox/<thread>/message_N.json``, older
  downloads ``messages/inbox/...``): ``participants`` [{``name``}], ``title``, messages with
  ``sender_name``, ``timestamp_ms``, ``content``, ``photos``, ``share``, ``reactions``... Instagram
  adds its own lines (``Liked a message``, ``Audio call ended``, ``X sent an attachment.`` beside a
  shared post or reel), read by the same rules below.
* **Messenger's end-to-end-encrypted download** (2024+, "Download your end-to-end encrypted
  chats"): one ``<Name>_<n>.json`` per thread at the root of the download, media under
  ``media/``, with ``participants`` a list of strings, ``threadName`` (the title with ``_<n>``
  appended) and messages with ``senderName``, ``timestamp`` (ms), ``text``, ``type``
  (``text``/``media``/``link``/``placeholder``), ``isUnsent``, ``media`` [{``uri``}] and
  ``reactions``. Each message is turned into the classic shape (media sorted into photos, videos,
  audio, GIFs and files by extension; ``placeholder`` is an unsent or unavailable message) and read
  as one.

Give it one thread file, a thread's folder (every ``message_N.json`` in it), or an end-to-end
download's folder (every thread file in it, each a chat). A thread's files (``message_1.json`` the
newest) usually hold disjoint time ranges, but a thread's merged messages must come out in time
order whatever the files hold: the first pass learns each file's first and last time; files whose
ranges do not overlap are read one after the other, oldest first, and files whose ranges overlap
are merged message by message (``heapq.merge``), each file's messages in time order (ties in file
order).

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
* Instagram's ``Liked a message`` is a ``reaction``; its calls (``call_duration``, ``Audio call
  ended``, ``X started a video chat``) are ``system``; a share whose content is Instagram's own
  ``X sent an attachment.`` is ``media`` (the link kept as its text).
* ``timestamp_ms`` is converted to naive local time.
* A thread is a group when ``thread_type`` is ``RegularGroup`` or it has more than two
  participants; the chat is the thread's ``title`` (the contact's name in a one-on-one thread).

**Who is me**, in this order: ``--me`` when it names a participant; the name in the export's
``profile_information.json`` (found beside the ``messages`` folder; Instagram's
``personal_information.json``); in a one-on-one thread, the participant who is not the title; the
one participant present in every thread of the inbox folder (of the end-to-end download's folder).
Otherwise ChatExportError asks for ``--me`` and lists the participants.
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
from .base import Chat, Reader, decode_head, path_text, same_person

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
# Lines Instagram writes on its own (not in the sender's name): likes and calls.
_LIKED_RE = re.compile(r"Liked a message\.?")
_CALL_RE = re.compile(r"(?:Audio call|Video chat|Video call|Call) ended\.?|.{1,80} (?:started|missed|joined) "
                      r"(?:an audio call|a video chat|a video call|an? call)\.?")
# End-to-end download: "<Name>_<n>.json"; its media by extension -> the classic key.
_E2EE_SUFFIX_RE = re.compile(r"_\d+$")
_E2EE_MEDIA = {**dict.fromkeys(("jpg", "jpeg", "png", "webp", "heic"), "photos"), "gif": "gifs",
               **dict.fromkeys(("mp4", "mov", "webm"), "videos"),
               **dict.fromkeys(("ogg", "oga", "opus", "aac", "m4a", "mp3", "wav"), "audio_files")}


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
    has_messages = e2ee = False
    ascending = True
    last = key = -math.inf
    low, high = math.inf, -math.inf
    for prefix, event, value in json_events(path, "Messenger"):
        if prefix == "messages.item.timestamp_ms" or prefix == "messages.item.timestamp":
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
                if key > -math.inf:
                    low, high = min(low, key), max(high, key)
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
        elif prefix == "threadName" and event == "string":
            e2ee = True
            title = _E2EE_SUFFIX_RE.sub("", fix_mojibake(value))
        elif prefix == "thread_type" and event == "string":
            thread_type = value
    if not has_messages:
        raise ChatExportError(f"{path}: not a Messenger export (no 'messages' list)")
    if low > high:
        low = high = -math.inf
    return {"participants": participants, "title": title, "thread_type": thread_type, "ascending": ascending,
            "e2ee": e2ee, "low": low, "high": high}


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


_PROFILE_FILES = {  # where Facebook and Instagram keep the owner's name, and its JSON prefix there
    "personal_information/profile_information/profile_information.json": "profile_v2.name.full_name",
    "profile_information/profile_information.json": "profile_v2.name.full_name",
    "profile_information.json": "profile_v2.name.full_name",
    "personal_information/personal_information/personal_information.json":
        "profile_user.item.string_map_data.Name.value",
}


def _profile_name(start: Path) -> str | None:
    """The owner's name from ``profile_information.json`` (Instagram: ``personal_information.json``),
    looked for above the thread folder."""
    for folder in list(start.parents)[:6]:
        for rel, key in _PROFILE_FILES.items():
            candidate = folder / rel
            if candidate.is_file():
                try:
                    name = next((value for prefix, event, value in json_events(candidate, "Facebook profile")
                                 if prefix == key and event == "string"), None)
                except (OSError, ChatExportError):
                    continue
                name = fix_mojibake(name)
                if isinstance(name, str) and name.strip():
                    return name.strip()
    return None


def _in_every_thread(thread_folder: Path, limit: int = 30, e2ee: bool = False) -> str | None:
    """The one participant of every thread in the inbox holding ``thread_folder`` (of every thread
    file in an end-to-end download's folder), if any."""
    common: set[str] | None = None
    seen = 0
    try:
        if e2ee:
            firsts = _e2ee_files(thread_folder)
        else:
            firsts = [folder / "message_1.json" for folder in sorted(p for p in thread_folder.parent.iterdir()
                                                                     if p.is_dir())]
    except OSError:
        return None
    for first in firsts[:limit]:
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


def _is_e2ee(head: str) -> bool:
    """Whether a file's first bytes are an end-to-end download's thread (``threadName``, ``senderName``)."""
    keys = json_keys(head)
    return "participants" in keys and bool(keys & {"threadName", "senderName"})


def _e2ee_files(folder: Path, limit: int = 10_000) -> list[Path]:
    """The thread files of an end-to-end download's folder (``*.json`` whose start says so), by name."""
    found = []
    for child in sorted(folder.iterdir())[:limit]:
        if child.suffix.lower() == ".json" and child.is_file():
            try:
                with open(child, "rb") as handle:
                    if _is_e2ee(decode_head(handle.read(4096))):
                        found.append(child)
            except OSError:
                continue
    return found


def _from_e2ee(msg: object) -> object:
    """An end-to-end download's message in the classic shape (see the module docstring)."""
    if not isinstance(msg, dict):
        return msg
    out = {"sender_name": msg.get("senderName"), "timestamp_ms": msg.get("timestamp"),
           "is_unsent": bool(msg.get("isUnsent")) or msg.get("type") == "placeholder"}
    text = msg.get("text")
    if isinstance(text, str) and text:
        out["content"] = text
    media = msg.get("media")
    for item in media if isinstance(media, list) else ():
        uri = item.get("uri") if isinstance(item, dict) else None
        ext = uri.rsplit(".", 1)[-1].lower() if isinstance(uri, str) and "/" in uri and "." in uri else ""
        out.setdefault(_E2EE_MEDIA.get(ext, "files"), []).append({"uri": uri})
    return out


class MessengerReader(Reader):
    name = "messenger"
    reads_folders = True

    def sniff(self, path: Path, head: str) -> bool:
        """A ``message_N.json`` with Messenger's or Instagram's keys (``participants``,
        ``sender_name``, ...), or an end-to-end download's thread (``threadName``, ``senderName``)."""
        keys = json_keys(head)
        if "participants" not in keys:
            return False
        return bool(_FILE_RE.search(Path(path).name)) or bool(
            keys & {"sender_name", "thread_path", "thread_type", "is_still_participant", "threadName", "senderName"})

    def sniff_dir(self, path: Path) -> bool:
        """A thread folder (holds ``message_N.json``) or an end-to-end download's folder."""
        return bool(_thread_files(path)) or bool(_e2ee_files(path, limit=200))

    def chats(self, path: Path) -> Iterator[Chat]:
        if path.is_dir():
            threads = [(_thread_files(path), path)]
            if not threads[0][0]:
                threads = [([file], path) for file in _e2ee_files(path)]
            if not threads:
                raise ChatExportError(f"{path}: a folder without message_N.json files (not a Messenger thread folder)")
        else:
            threads = [([path], path.parent)]
        for files, folder in threads:
            first = _scan(files[0])
            participants = first["participants"]
            is_group = first["thread_type"] == "RegularGroup" or len(participants) > 2
            yield Chat(title=first["title"] or "", is_group=is_group, people={n: {n} for n in participants if n},
                       data={"files": files, "first": first, "folder": folder, "e2ee": first["e2ee"]})

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
        common = _in_every_thread(chat.data["folder"], e2ee=chat.data["e2ee"])
        if common and common in participants:
            return frozenset({common})
        return None

    def owner_problem(self, chat: Chat) -> str:
        return "cannot tell which Messenger participant is you"

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, tuple]]:
        """Each file's messages in time order; files read one after the other where their time
        ranges do not overlap, merged message by message where they do (module docstring)."""
        files = chat.data["files"]
        scans = [chat.data["first"] if number == 0 else _scan(file) for number, file in enumerate(files)]
        order = sorted(range(len(files)), key=lambda n: (scans[n]["low"], scans[n]["high"], -n))
        groups: list[list[int]] = []
        reach = -math.inf
        for n in order:
            if groups and scans[n]["low"] <= reach and scans[n]["high"] > -math.inf:
                groups[-1].append(n)
            else:
                groups.append([n])
            reach = max(reach, scans[n]["high"])
        for group in groups:
            streams = [self._file_records(files[n], scans[n], chat) for n in group]
            if len(streams) == 1:
                yield from streams[0]
            else:
                yield from heapq.merge(*streams, key=lambda item: _sort_key(item[1][1]))

    def _file_records(self, file: Path, info: dict, chat: Chat) -> Iterator[tuple[int, tuple]]:
        """``(index, (where, message))`` of one file in time order; ``where`` = (file, chat, group)."""
        participants = info["participants"]
        title = info["title"] or next((n for n in participants if n not in chat.mine), "") or path_text(file.parent.name)
        where = (file, title, info["thread_type"] == "RegularGroup" or len(participants) > 2)
        convert = _from_e2ee if info["e2ee"] else None
        items = ((index, fix_mojibake(convert(msg) if convert else msg)) for index, msg in
                 enumerate(json_items(file, "messages.item", "Messenger", chat.notes)))
        for index, msg in items if info["ascending"] else _oldest_first(items):
            yield index, (where, msg)

    def message(self, record: tuple, chat: Chat, mine: frozenset[str]) -> Message:
        (file, title, is_group), msg = record
        chat.data["file"] = file  # the file a skip of this record names
        source = file if chat.data["e2ee"] else file.parent
        return _message(msg, title, is_group, mine, path_text(source))

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
    if msg.get("is_unsent") or msg.get("type") in _SYSTEM_TYPES or "call_duration" in msg:
        kind = "system"
    elif share is not None:
        link = share.get("link") or ""
        if text.strip() and not (text.startswith((sender, "You ")) and _SENT_MEDIA_RE.search(text)):
            kind = "text"
            if link and link not in text:
                text = f"{text} {link}"
        else:
            kind, text = "media", link
    elif any(msg.get(key) for key in _MEDIA_KEYS) and not text.strip():
        kind = "media"
    elif not text.strip():
        kind = "system"
    elif _REACTION_RE.fullmatch(text.strip()) or _LIKED_RE.fullmatch(text.strip()):
        kind = "reaction"
    elif _CALL_RE.fullmatch(text.strip()):
        kind = "system"
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

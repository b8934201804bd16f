"""Reader for Discord's own data package (Settings › Data & Privacy › Request all of my data).

The package holds **only the owner's own messages** (Discord leaves out what others wrote), one
folder per channel the owner wrote in::

    package/                         (the folder, or the .zip Discord mails, read in place)
      account/user.json              {"id", "username", "global_name", ...}   (``Account/`` in newer ones)
      messages/index.json            {"<channel id>": "Direct Message with alex", "<id>": "general in Climbing Club", ...}
      messages/c<channel id>/channel.json    {"id", "type", "recipients": [ids]} / {"name", "guild": {"name"}}
      messages/c<channel id>/messages.json   [{"ID", "Timestamp", "Contents", "Attachments"}, ...]   (newer)
      messages/c<channel id>/messages.csv    ID,Timestamp,Contents,Attachments                        (older)

Older packages name the folders ``<channel id>`` without the ``c``. Give it the package folder,
its ``messages`` folder, or the package's .zip (members are read in place, never extracted; zip
bombs are refused as in the WhatsApp reader).

* Each channel is one chat: a DM (``type`` 1 or ``"DM"``) is a one-on-one chat named after the
  other person, from ``index.json``'s "Direct Message with NAME" (a ``#1234`` discriminator
  dropped), else from ``channel.json``'s recipients (the one that is not the owner's id: ``Discord
  user <id>``); a group DM (``type`` 3 / ``"GROUP_DM"``) is a group chat named after its name or
  its index entry; a server channel is a group chat ``"<server> #<channel>"``.
* Every message is the owner's (``from_me`` True, sender = ``global_name`` or ``username`` from
  ``account/user.json``, else ``--me``, else ``me``): text -> ``text``; no text but
  ``Attachments`` -> ``media``; neither (a sticker, a call, a pin: the package does not say) ->
  ``system``.
* ``Timestamp`` (``2024-03-11 14:02:55``, ``2021-05-04 19:22:10.123000+00:00``, ISO 8601) is UTC
  when no offset is written, converted to naive local time. A channel's messages come out oldest
  first (the package writes them newest first), sorted in bounded memory as the Messenger reader
  sorts (``messenger._oldest_first``).
* A malformed message (no time, not an object, a bad CSV row) is skipped and counted with its
  index in ``messages.json`` (its line in ``messages.csv``); a channel folder without
  ``channel.json`` is still read (named from ``index.json``).

What it cannot give: **no contact turns**, so no reply pairs: ``twin process`` on the package alone
counts the owner's messages (its summary and report describe them) and then says it found no
reply pairs. Training pairs need both sides, which DiscordChatExporter's JSON (the ``discord``
format) has.
"""
from __future__ import annotations

import csv
import json
import re
import zipfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import ChatExportError
from ..message import Message
from ._common import json_events, json_items
from .base import Chat, Reader, path_text, safe_text, text_lines, zip_member_guard
from .messenger import _oldest_first

_CHANNEL_RE = re.compile(r"c?(\d{5,25})")
_DM_RE = re.compile(r"Direct Message with (.+?)(?:#\d{1,4})?$")
_IN_RE = re.compile(r"(.+) in (.+)")
DM_TYPES = {1, "1", "DM"}
GROUP_TYPES = {3, "3", "GROUP_DM"}
MAX_SMALL_JSON = 64 << 20  # index.json, channel.json, user.json are read whole; no real one is near this


def _child(node, name: str):
    """The child of a folder (a Path or a zipfile.Path) named ``name``, any case; None if absent."""
    try:
        for child in node.iterdir():
            if child.name.rstrip("/").lower() == name:
                return child
    except (OSError, ValueError):
        return None
    return None


def _messages_dir(root):
    """The ``messages`` folder of a package given as its root or as that folder itself."""
    if _child(root, "index.json") is not None:
        return root
    found = _child(root, "messages")
    if found is not None and found.is_dir() and _child(found, "index.json") is not None:
        return found
    return None


def _zip_root(archive: zipfile.ZipFile):
    """The folder of a package zip that holds ``messages/`` (its root, or one folder down)."""
    root = zipfile.Path(archive)
    if _messages_dir(root) is not None:
        return root
    for child in root.iterdir():
        if child.is_dir() and _messages_dir(child) is not None:
            return child
    return None


def _zip_names_say_package(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist()[:100_000]:
            parts = name.lower().split("/")
            if parts[-2:] == ["messages", "index.json"] and len(parts) <= 3:
                return True
    return False


class _Tree:
    """A package opened for reading: its ``messages`` folder and how to open a file in it."""

    def __init__(self, path: Path):
        self.path = path
        self.archive: zipfile.ZipFile | None = None
        if path.is_file():
            self.archive = zipfile.ZipFile(path)
            root = _zip_root(self.archive)
        else:
            root = path
        messages = _messages_dir(root) if root is not None else None
        if messages is None:
            raise ChatExportError(f"{path}: not a Discord data package (no messages/index.json)")
        self.messages = messages
        self.root = root if messages is not root else None  # the package root, when given it
        if self.root is None and self.archive is None:
            self.root = path.parent  # given the messages folder: account/ is beside it

    def opener(self, node):
        """A function opening ``node`` as bytes (a zip member checked against zip bombs first)."""
        if self.archive is None:
            return lambda: open(node, "rb")
        info = self.archive.getinfo(node.at)
        zip_member_guard(self.path, info)

        @contextmanager
        def open_member():
            with self.archive.open(info) as raw:
                yield raw
        return open_member

    def small_json(self, node) -> Any:
        """A small JSON file read whole (index.json, channel.json, user.json); None if unreadable."""
        if node is None or not node.is_file():
            return None
        try:
            with self.opener(node)() as raw:
                data = raw.read(MAX_SMALL_JSON + 1)
            if len(data) > MAX_SMALL_JSON:
                return None
            return json.loads(data.decode("utf-8-sig", errors="replace"))
        except (OSError, ValueError, RecursionError, zipfile.BadZipFile):
            return None

    def where(self, node) -> str:
        return path_text(self.path / node.at) if self.archive is not None else path_text(node)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _owner(tree: _Tree) -> tuple[str, str | None]:
    """(owner id, owner name) from ``account/user.json``; ("me", None) when it is not there."""
    account = _child(tree.root, "account") if tree.root is not None else None
    user = tree.small_json(_child(account, "user.json")) if account is not None else None
    if not isinstance(user, dict):
        return "me", None
    name = user.get("global_name") or user.get("username")
    return str(user.get("id") or "me"), safe_text(name) if isinstance(name, str) and name else None


def _title(channel_id: str, info: dict, listed: Any, owner_id: str) -> tuple[str, bool]:
    """(chat name, is a group) of one channel (see the module docstring)."""
    kind = info.get("type")
    listed = safe_text(listed) if isinstance(listed, str) and listed.strip() else ""
    if kind in DM_TYPES or (kind is None and listed.startswith("Direct Message with ")):
        found = _DM_RE.fullmatch(listed)
        if found:
            return found.group(1).strip(), False
        others = [str(r.get("id") if isinstance(r, dict) else r) for r in info.get("recipients") or []]
        others = [r for r in others if r != owner_id]
        return (f"Discord user {others[0]}" if len(others) == 1 else f"Discord DM {channel_id}"), False
    if kind in GROUP_TYPES:
        name = info.get("name")
        return (safe_text(name) if isinstance(name, str) and name else listed or f"Discord group {channel_id}"), True
    guild = info.get("guild") if isinstance(info.get("guild"), dict) else {}
    name, server = info.get("name"), guild.get("name")
    if not (isinstance(name, str) and name and isinstance(server, str) and server):
        found = _IN_RE.fullmatch(listed)
        if found:
            name, server = found.group(1), found.group(2)
    if isinstance(name, str) and name:
        return f"{safe_text(server) if isinstance(server, str) and server else 'Discord'} #{safe_text(name)}", True
    return listed or f"Discord channel {channel_id}", True


def _stamp_ms(value: Any) -> float:
    """Milliseconds since the epoch of a package ``Timestamp`` (UTC when it has no offset)."""
    if not isinstance(value, str):
        raise TypeError("Timestamp is not a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() * 1000


class DiscordPackageReader(Reader):
    name = "discord-package"
    reads_folders = True
    people_label = "authors"
    me_hint = "your Discord name"

    def sniff(self, path: Path, head: str) -> bool:
        """A .zip holding ``messages/index.json`` (at its root or one folder down)."""
        if not head.startswith("PK\x03\x04"):
            return False
        try:
            return _zip_names_say_package(Path(path))
        except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
            return False

    def sniff_dir(self, path: Path) -> bool:
        """A package folder (holds ``messages/index.json``) or its ``messages`` folder."""
        found = _messages_dir(path)
        return found is not None and any(child.is_dir() and _CHANNEL_RE.fullmatch(child.name)
                                         for child in found.iterdir())

    def chats(self, path: Path) -> Iterator[Chat]:
        tree = _Tree(path)
        try:
            owner_id, owner_name = _owner(tree)
            index = tree.small_json(_child(tree.messages, "index.json"))
            index = index if isinstance(index, dict) else {}
            folders = sorted((child for child in tree.messages.iterdir()
                              if child.is_dir() and _CHANNEL_RE.fullmatch(child.name.rstrip("/"))),
                             key=lambda child: child.name)
            for folder in folders:
                channel_id = _CHANNEL_RE.fullmatch(folder.name.rstrip("/")).group(1)
                info = tree.small_json(_child(folder, "channel.json"))
                info = info if isinstance(info, dict) else {}
                title, is_group = _title(channel_id, info, index.get(channel_id), owner_id)
                data = {"tree": tree, "folder": folder, "owner_name": owner_name, "source": tree.where(folder)}
                yield Chat(title=title, is_group=is_group, people={owner_id: {owner_name} if owner_name else set()},
                           data=data)
        finally:
            tree.close()

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str]:
        return frozenset(chat.people)  # the package is the owner's: every message in it is theirs

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, Any]]:
        tree: _Tree = chat.data["tree"]
        folder = chat.data["folder"]
        node = _child(folder, "messages.json")
        if node is not None:
            where = tree.where(node)
            opener = tree.opener(node)
            chat.data["file"] = Path(where)
            for _ in json_events(Path(where), "Discord data package", opener=opener):
                pass  # the depth check json_items relies on (and a broken file refused before any message)
            items = ((index, _record(msg)) for index, msg in
                     enumerate(json_items(Path(where), "item", "Discord data package", chat.notes, opener=opener)))
        else:
            node = _child(folder, "messages.csv")
            if node is None:
                return
            chat.data["file"] = Path(tree.where(node))
            items = self._csv_rows(tree, node, chat.notes)
        yield from _oldest_first(items)

    def _csv_rows(self, tree: _Tree, node, notes: list) -> Iterator[tuple[int, Any]]:
        with tree.opener(node)() as raw:
            reader = csv.DictReader(line + "\n" for line in text_lines(raw, tree.where(node), notes))
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # one row csv cannot read: that row only
                    yield reader.reader.line_num, {"timestamp_ms": None, "bad": f"{exc}"}
                    continue
                yield reader.reader.line_num, _record(row)

    def record_file(self, path: Path, chat: Chat) -> Path:
        return chat.data.get("file", path)

    def message(self, record: Any, chat: Chat, mine: frozenset[str]) -> Message:
        if not isinstance(record, dict) or "bad" in record:
            raise ValueError(record.get("bad") if isinstance(record, dict) else "message is not an object")
        stamp = record["timestamp_ms"]
        if not isinstance(stamp, float):
            raise ValueError(record.get("error") or "no Timestamp")
        contents = record.get("Contents") or ""
        if not isinstance(contents, str):
            raise TypeError("Contents is not a string")
        attachments = record.get("Attachments")
        kind = "text" if contents.strip() else "media" if attachments else "system"
        sender = chat.data["owner_name"] or chat.me or "me"
        return Message(sender=sender, text=contents, timestamp=datetime.fromtimestamp(stamp / 1000), chat=chat.title,
                       from_me=True, kind=kind, is_group=chat.is_group, source=chat.data["source"])


def _record(msg: Any) -> Any:
    """A package message with its sort key (``timestamp_ms``, None when it has no usable time)."""
    if not isinstance(msg, dict):
        return msg
    out = dict(msg)
    try:
        out["timestamp_ms"] = _stamp_ms(msg.get("Timestamp"))
    except (TypeError, ValueError, OverflowError) as exc:
        out["timestamp_ms"], out["error"] = None, f"Timestamp {msg.get('Timestamp')!r}: {exc}"[:200]
    return out


READER = DiscordPackageReader()
sniff = READER.sniff
sniff_dir = READER.sniff_dir
read = READER.read

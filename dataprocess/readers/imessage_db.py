"""Reader for the macOS Messages database ``~/Library/Messages/chat.db`` (SQLite).

The database is opened read-only (``file:…?mode=ro`` URI) and streamed with one query, oldest
message first. Tables used: ``message`` (``text``, ``attributedBody``, ``handle_id``,
``is_from_me``, ``date``, ``associated_message_type``, ``cache_has_attachments``,
``item_type``), ``handle`` (``id``: phone number or e-mail), ``chat`` (``chat_identifier``,
``display_name``, ``style``), ``chat_message_join`` and ``chat_handle_join``. Columns missing
from older databases are treated as empty.

* Dates count from 2001-01-01 UTC, in seconds on older macOS and nanoseconds on newer (told
  apart by magnitude); converted to naive local time.
* ``text`` is NULL on recent macOS when the words live only in ``attributedBody``, an archived
  NSAttributedString in Apple's typedstream format: the string follows the ``NSString`` class
  name, after a few type bytes ending in ``+``, as a length (one byte; or ``0x81`` and a
  little-endian 16-bit length; or ``0x82`` and a 32-bit one) and that many bytes of UTF-8.
  Those messages are decoded, not dropped.
* ``associated_message_type`` 2000-3999 (tapbacks ``Loved “…”`` and their removals) ->
  ``reaction``; an attachment (``cache_has_attachments``, or a text that is only U+FFFC) ->
  ``media`` (U+FFFC removed when there is text too); ``item_type`` other than 0 (member added
  or removed, group renamed, ...) -> ``system``.
* A chat is a group when it has more than one handle or its ``style`` is 43; the chat's name is
  its ``display_name``, else the other person's handle (one-on-one), else the handles joined.
  The database knows no contact names: senders are handles, and my messages (``is_from_me``)
  have ``--me`` (or ``Me``) as sender.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from ..errors import ChatExportError
from ..message import Message
from ._common import local_from_unix
from .base import NOBODY, Chat, Reader, path_text

APPLE_EPOCH = 978307200  # 2001-01-01T00:00:00Z in Unix seconds
GROUP_STYLE = 43
_OBJECT_REPLACEMENT = "\ufffc"
_REQUIRED = {"message", "handle"}


def _connect(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True)


def apple_time(value) -> datetime:
    """Naive local datetime of a Messages ``date``: seconds or nanoseconds since 2001-01-01 UTC."""
    value = float(value)
    if abs(value) > 1e11:  # nanoseconds (High Sierra and later); seconds stay below 1e11 until ~5170
        value /= 1e9
    return local_from_unix(APPLE_EPOCH + value)


def decode_attributed_body(blob: bytes | None) -> str | None:
    """The plain string inside an ``attributedBody`` typedstream blob; None when absent or unreadable."""
    if not blob:
        return None
    blob = bytes(blob)
    for marker in (b"NSString", b"NSMutableString"):
        at = blob.find(marker)
        if at >= 0:
            break
    else:
        return None
    plus = blob.find(b"+", at + len(marker), at + len(marker) + 12)
    if plus < 0:
        return None
    at = plus + 1
    if at >= len(blob):
        return None
    tag = blob[at]
    if tag == 0x81:
        length, at = int.from_bytes(blob[at + 1:at + 3], "little"), at + 3
    elif tag == 0x82:
        length, at = int.from_bytes(blob[at + 1:at + 5], "little"), at + 5
    elif tag < 0x80:
        length, at = tag, at + 1
    else:
        return None
    if at + length > len(blob):
        return None
    return blob[at:at + length].decode("utf-8", errors="replace")


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


class IMessageDBReader(Reader):
    """The database is one :class:`Chat` record stream (one query over every chat); each row says
    whether it is mine (``is_from_me``), so the owner needs no resolving."""

    name = "imessage-db"
    malformed = (TypeError, ValueError, OverflowError, OSError)

    def sniff(self, path: Path, head: str) -> bool:
        """An SQLite database with the Messages tables ``message`` and ``handle``."""
        if not head.startswith("SQLite format 3"):
            return False
        try:
            db = _connect(Path(path))
            try:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                db.close()
            return _REQUIRED <= tables
        except sqlite3.Error:
            return False

    def chats(self, path: Path) -> Iterator[Chat]:
        yield Chat(title=path_text(path.name), data={"source": path_text(path), "handles_of": {}})

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str]:
        return NOBODY  # each row says whether it is mine

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, tuple]]:
        try:
            db = _connect(path)
        except sqlite3.Error as exc:
            raise ChatExportError(f"{path}: cannot open as a Messages database ({exc})") from None
        try:
            for row in _rows(db, path, chat.data["handles_of"]):
                yield row[0], row
        except sqlite3.DatabaseError as exc:
            raise ChatExportError(f"{path}: not a readable Messages database ({exc})") from None
        finally:
            db.close()

    def where(self, chat: Chat, where: int) -> str:
        return f"message ROWID {where}: "

    def message(self, row: tuple, chat: Chat, mine: frozenset[str]) -> Message:
        return _message(row, chat.data["handles_of"], chat.me or "Me", chat.data["source"])


def _rows(db: sqlite3.Connection, path: Path, handles_of: dict[int, list[str]]) -> Iterator[tuple]:
    """The message rows, oldest first, each joined with its handle and chat; fills ``handles_of``."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not _REQUIRED <= tables:
        raise ChatExportError(f"{path}: an SQLite file without the Messages tables (message, handle)")
    cols = _columns(db, "message")

    def col(name: str, default: str = "NULL") -> str:
        return f"m.{name}" if name in cols else default

    has_chats = {"chat", "chat_message_join"} <= tables
    if has_chats and "chat_handle_join" in tables:
        for chat_id, handle in db.execute(
                "SELECT chj.chat_id, h.id FROM chat_handle_join chj JOIN handle h ON h.ROWID = chj.handle_id "
                "ORDER BY chj.chat_id, h.id"):
            handles_of.setdefault(chat_id, []).append(handle)
    chat_cols = _columns(db, "chat") if has_chats else set()
    chat_select = (", c.ROWID, " + ("c.chat_identifier" if "chat_identifier" in chat_cols else "NULL") + ", "
                   + ("c.display_name" if "display_name" in chat_cols else "NULL") + ", "
                   + ("c.style" if "style" in chat_cols else "NULL")) if has_chats else ", NULL, NULL, NULL, NULL"
    chat_join = ("LEFT JOIN chat_message_join cmj ON cmj.message_id = m.ROWID "
                 "LEFT JOIN chat c ON c.ROWID = cmj.chat_id ") if has_chats else ""
    query = (f"SELECT m.ROWID, {col('text')}, {col('attributedBody')}, {col('is_from_me', '0')}, {col('date', '0')}, "
             f"{col('associated_message_type', '0')}, {col('cache_has_attachments', '0')}, "
             f"{col('item_type', '0')}, h.id{chat_select} "
             f"FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id {chat_join}"
             f"ORDER BY {col('date', 'm.ROWID')}, m.ROWID")
    yield from db.execute(query)


def _message(row: tuple, handles_of: dict[int, list[str]], me: str, source: str) -> Message:
    (_, text, body, is_from_me, date, assoc, has_attachment, item_type, handle,
     chat_id, identifier, display_name, style) = row
    if not text:
        text = decode_attributed_body(body) or ""
    handles = handles_of.get(chat_id, [])
    is_group = style == GROUP_STYLE or len(handles) > 1
    if display_name:
        chat = display_name
    elif not is_group:
        chat = (handles[0] if handles else None) or handle or identifier or "unknown"
    else:
        chat = ", ".join(handles) or identifier or "group"
    from_me = bool(is_from_me)
    sender = me if from_me else (handle or chat)
    if assoc and 2000 <= int(assoc) < 4000:
        kind = "reaction"
    elif item_type and int(item_type) != 0:
        kind = "system"
    elif not text.replace(_OBJECT_REPLACEMENT, "").strip():
        kind = "media" if (has_attachment or _OBJECT_REPLACEMENT in text) else "system"
    else:
        kind = "text"
        text = text.replace(_OBJECT_REPLACEMENT, "").strip()
    return Message(sender=sender, text=text, timestamp=apple_time(date), chat=chat, from_me=from_me, kind=kind,
                   is_group=is_group, source=source)


READER = IMessageDBReader()
sniff = READER.sniff
read = READER.read

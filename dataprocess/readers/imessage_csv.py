"""Reader for the iMessage CSV written by the macOS "iMessage analysis" export app.

Columns: ``Timestamp,Readable Time,Sender,Sender ID,Message,Group Chat,Group Chat Name,
Sent by Me,To``. ``Sender`` is ``Me`` for the owner's messages. Two value styles are seen and
both are read: ``Timestamp`` as local ``YYYY-MM-DD HH:MM:SS`` or as Unix seconds
(``1709586902.0``); ``Group Chat`` / ``Sent by Me`` as ``Yes``/``No`` or ``1``/``0``; rows oldest
or newest first (later stages sort by time). Attachments appear as U+FFFC or an empty message;
tapbacks as text (``Loved “…”``). A row that cannot be read (a time that is no time, a field
over the csv module's 128 KB limit, a different number of fields) is skipped and counted with
its line number; the file is refused only when its header is not this export's.
"""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from ..reactions import is_tapback
from .base import NOBODY, Chat, Reader, path_text, text_lines

HEADER = ["Timestamp", "Readable Time", "Sender", "Sender ID", "Message",
          "Group Chat", "Group Chat Name", "Sent by Me", "To"]
_OBJECT_REPLACEMENT = "\ufffc"
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


class IMessageCSVReader(Reader):
    """The whole file is one :class:`Chat` record stream; rows name their chat and say whether
    I sent them (``Sent by Me``), so the owner needs no resolving."""

    name = "imessage"

    def sniff(self, path: Path, head: str) -> bool:
        """True when the file starts with this export's header."""
        first = head.lstrip("\ufeff").splitlines()[0] if head else ""
        return [c.strip() for c in first.split(",")][:5] == HEADER[:5]

    def chats(self, path: Path) -> Iterator[Chat]:
        yield Chat(title=path_text(path.name), data=path_text(path))

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str]:
        return NOBODY  # each row says whether it is mine

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, dict]]:
        with open(path, "rb") as raw:  # bounded lines (base.text_lines), not the csv module's unbounded ones
            reader = csv.DictReader(line + "\n" for line in text_lines(raw, path_text(path), chat.notes))
            try:
                missing = [c for c in HEADER if c not in (reader.fieldnames or [])]
            except csv.Error as exc:  # the header itself is broken: not this export
                raise ChatExportError(f"{path}: line {reader.line_num}: {exc}: not an iMessage CSV export") from None
            if missing:
                raise ChatExportError(f"{path}: not an iMessage CSV export (missing columns: {', '.join(missing)})")
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # a field over csv's limit (128 KB), ...: that row only
                    yield reader.reader.line_num, _BadRow(f"{exc}")  # DictReader.line_num lags on errors
                    continue
                yield reader.line_num, row

    def message(self, row: dict, chat: Chat, mine: frozenset[str]) -> Message:
        if isinstance(row, _BadRow):
            raise ValueError(row.reason)
        return _to_message(row, chat.data, chat.me)


class _BadRow:
    """A row the csv module could not read (skipped and counted as malformed)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_TRUE = {"yes", "1", "true"}


def _parse_time(value: str) -> datetime:
    value = value.strip()
    try:
        return datetime.fromtimestamp(float(value))
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    return datetime.fromisoformat(value)


def _to_message(row: dict, source: str, me: str | None) -> Message:
    if None in row or any(v is None for v in row.values()):
        raise ValueError("a row with a different number of fields than the header")
    from_me = row["Sent by Me"].strip().lower() in _TRUE or row["Sender"].strip() == "Me"
    is_group = row["Group Chat"].strip().lower() in _TRUE
    sender = (me or "Me") if from_me else row["Sender"].strip()
    if is_group:
        chat = row["Group Chat Name"].strip() or row["To"].strip()
    else:
        chat = row["To"].strip() if from_me else row["Sender"].strip()
    if not chat:
        raise ValueError("row names no chat")
    text = row["Message"] or ""
    if not text.replace(_OBJECT_REPLACEMENT, "").strip():
        kind = "media"
    elif is_tapback(text):
        kind = "reaction"
    else:
        kind = "text"
        text = text.replace(_OBJECT_REPLACEMENT, "").strip()
    return Message(sender=sender, text=text, timestamp=_parse_time(row["Timestamp"]), chat=chat,
                   from_me=from_me, kind=kind, is_group=is_group, source=source)


READER = IMessageCSVReader()
sniff = READER.sniff
read = READER.read

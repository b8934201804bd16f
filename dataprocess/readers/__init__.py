"""Export readers, one module per format, and format detection.

Each reader module offers ``sniff(path, head) -> bool`` (does this file look like my format?)
and ``read(path, me=None, skipped=None) -> Iterator[Message]``; a reader that accepts a folder
also offers ``sniff_dir(path) -> bool``. Adding a platform means adding a module and one line to
:data:`READERS` (the CLI's ``--format`` choices and :data:`FORMATS` follow from it).

Detection (``detect_format``) looks only at the first 4 KB of a file, its name, and for a
``.zip`` the names and first bytes of its members; the first reader whose sniff says yes wins:

=============  =======================================================================
imessage       CSV whose header starts ``Timestamp,Readable Time,Sender,Sender ID,Message``
imessage-db    SQLite file (``SQLite format 3``) with ``message`` and ``handle`` tables
whatsapp       text whose first line is a WhatsApp header (``[date, time] Name:`` or
               ``date, time - Name:``), or a ``.zip`` holding such a ``.txt``
telegram       JSON with ``name``/``type``/``id`` and a Telegram chat type, or with
               ``personal_information`` and ``about``/``chats`` (whole-account export)
messenger      JSON with ``participants`` named ``message_N.json`` or with Messenger's keys
               (``sender_name``, ``thread_path``, ...); a folder holding ``message_N.json``
discord        JSON with top-level ``guild`` and ``channel`` (DiscordChatExporter)
=============  =======================================================================

Times are naive local datetimes in every reader (see ``_common``). A folder is read only as a
Messenger thread folder. Anything else is refused with one ChatExportError.
"""
from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from . import discord, imessage_csv, imessage_db, messenger, telegram, whatsapp

READERS = {
    "imessage": imessage_csv,
    "imessage-db": imessage_db,
    "whatsapp": whatsapp,
    "telegram": telegram,
    "messenger": messenger,
    "discord": discord,
}
FORMATS = ("auto", *READERS)


def _head(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as handle:
        return handle.read(size).decode("utf-8", errors="replace")


def detect_format(path: Path) -> str:
    """Name of the reader whose format ``path`` is in; ChatExportError when none fits."""
    path = Path(path)
    if path.is_dir():
        for name, reader in READERS.items():
            sniff_dir = getattr(reader, "sniff_dir", None)
            if sniff_dir is not None and sniff_dir(path):
                return name
        raise ChatExportError(f"{path}: a folder that is not a Messenger thread folder (no message_N.json in it); "
                          "pass the export files themselves")
    head = _head(path)
    for name, reader in READERS.items():
        if reader.sniff(path, head):
            return name
    raise ChatExportError(f"{path}: unrecognised export format (supported: {', '.join(READERS)}); use --format to force one")


def read_export(path, fmt: str | None = None, me: str | None = None,
                skipped: list | None = None) -> Iterator[Message]:
    """Yield the :class:`Message` records of one export file (or Messenger thread folder).

    ``fmt`` is a key of :data:`READERS` or ``None``/``"auto"`` to detect it; ``me`` names the
    export's owner where the export does not say; malformed records are skipped and, when
    ``skipped`` is a list, recorded there as ``(file, line, reason)`` (for JSON exports the
    number is the message's index in its ``messages`` array, for chat.db its ROWID).
    """
    path = Path(path)
    if not path.exists():
        raise ChatExportError(f"{path}: no such file")
    try:
        name = detect_format(path) if fmt in (None, "auto") else fmt
    except OSError as exc:
        raise ChatExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if name not in READERS:
        raise ChatExportError(f"unknown format {name!r} (supported: {', '.join(READERS)})")
    if path.is_dir() and getattr(READERS[name], "sniff_dir", None) is None:
        raise ChatExportError(f"{path}: a folder, not a {name} export file")
    try:
        yield from READERS[name].read(path, me=me, skipped=skipped)
    except UnicodeDecodeError:
        raise ChatExportError(f"{path}: not UTF-8 text, so not a {name} export") from None
    except json.JSONDecodeError as exc:
        raise ChatExportError(f"{path}: not valid JSON, so not a {name} export ({exc.msg})") from None
    except zipfile.BadZipFile:
        raise ChatExportError(f"{path}: a damaged .zip file") from None
    except sqlite3.DatabaseError as exc:
        raise ChatExportError(f"{path}: not a readable database, so not a {name} export ({exc})") from None
    except OSError as exc:
        raise ChatExportError(f"{path}: cannot read ({exc.strerror or exc})") from None

"""Export readers, one module per format, and format detection.

Each reader module defines a subclass of :class:`~dataprocess.readers.base.Reader` (the template
method that owns the skip records and the "who is me" rule) and exposes one instance as
``READER``. Adding a platform means adding a module and one line to :data:`READERS` (the CLI's
``--format`` choices and :data:`FORMATS` follow from it).

Detection (``detect_format``) looks only at the first 4 KB of a file, its name, and for a
``.zip`` the names and first bytes of its members; the first reader whose sniff says yes wins:

=============  =======================================================================
imessage       CSV whose header starts ``Timestamp,Readable Time,Sender,Sender ID,Message``
imessage-db    SQLite file (``SQLite format 3``) with ``message`` and ``handle`` tables
whatsapp       text (UTF-8, or UTF-16 with a BOM) whose first line is a WhatsApp header, in any
               layout of ``whatsapp_layout``, or a ``.zip`` holding such a ``.txt``
telegram       JSON with a Telegram chat type or ``date_unixtime``/``from_id`` messages, or with
               ``about``/``chats``/``personal_information`` (whole-account export); Telegram
               Desktop's HTML export (``messages.html``, or a folder holding it)
messenger      JSON with ``participants`` named ``message_N.json`` or with Messenger's keys
               (``sender_name``, ``thread_path``, ...): Messenger and Instagram threads; a folder
               holding ``message_N.json``; Messenger's end-to-end download (``threadName``,
               ``senderName``), a thread file or the download's folder
discord        JSON with top-level ``guild`` and ``channel`` (DiscordChatExporter)
discord-package  Discord's own data package: a folder holding ``messages/index.json`` (or that
               ``messages`` folder), or a ``.zip`` holding it
=============  =======================================================================

Times are naive local datetimes in every reader (see ``_common``). A folder is read as a Messenger
or Instagram thread folder, a Messenger end-to-end download, a Telegram HTML export folder or a
Discord data package. Anything else is refused with one ChatExportError.
"""
from __future__ import annotations

import csv
import json
import sqlite3
import stat
import zipfile
from pathlib import Path
from typing import Iterator

from ..errors import ChatExportError
from ..message import Message
from . import discord, discord_package, imessage_csv, imessage_db, messenger, telegram, whatsapp
from .base import Reader, decode_head

READERS: dict[str, Reader] = {
    "imessage": imessage_csv.READER,
    "imessage-db": imessage_db.READER,
    "whatsapp": whatsapp.READER,
    "telegram": telegram.READER,
    "messenger": messenger.READER,
    "discord": discord.READER,
    "discord-package": discord_package.READER,
}
FORMATS = ("auto", *READERS)


def _head(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as handle:
        return decode_head(handle.read(size))


def check_kind(path: Path) -> None:
    """Refuse what is neither a regular file nor a folder (a FIFO would block the first read for
    ever; a device or socket is no export): one ChatExportError, before anything is opened."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if not path.exists():
            raise ChatExportError(f"{path}: no such file") from None
        raise ChatExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
    raise ChatExportError(f"{path}: {kind}, not a regular file: give the export file itself")


def detect_format(path: Path) -> str:
    """Name of the reader whose format ``path`` is in; ChatExportError when none fits."""
    path = Path(path)
    check_kind(path)
    if path.is_dir():
        for name, reader in READERS.items():
            if reader.reads_folders and reader.sniff_dir(path):
                return name
        raise ChatExportError(f"{path}: a folder that is not a Messenger or Instagram thread folder (no message_N.json "
                              "in it), a Messenger end-to-end download, a Telegram HTML export (no messages.html) nor a "
                              "Discord data package (no messages/index.json); pass the export files themselves")
    head = _head(path)
    for name, reader in READERS.items():
        if reader.sniff(path, head):
            return name
    raise ChatExportError(f"{path}: unrecognised export format (supported: {', '.join(READERS)}); use --format to force one")


def read_export(path, fmt: str | None = None, me: str | None = None,
                skipped: list | None = None, *, require_owner: bool = False,
                dayfirst: bool | None = None, notes: list | None = None) -> Iterator[Message]:
    """Yield the :class:`Message` records of one export file (or export folder).

    ``fmt`` is a key of :data:`READERS` or ``None``/``"auto"`` to detect it; ``me`` names the
    export's owner where the export does not say (without it, ``from_me`` is False wherever the
    export does not tell); malformed records are skipped and, when ``skipped`` is a list,
    recorded there as ``(file, line, reason)`` (for JSON exports the number is the message's
    index in its ``messages`` array, for chat.db its ROWID). ``require_owner`` (for building reply
    pairs): a chat whose owner neither the export nor ``me`` tells raises ChatExportError listing
    the names to pass as ``--me``. ``dayfirst`` forces the day/month order of formats that leave
    it open (WhatsApp; None: decided from the file); ``notes``, when a list, receives the lines the
    reader wants shown in the summary (the order chosen and why, characters repaired).

    Only regular files and folders are read: a FIFO, device or socket is refused with one line.
    """
    path = Path(path)
    check_kind(path)
    try:
        name = detect_format(path) if fmt in (None, "auto") else fmt
    except OSError as exc:
        raise ChatExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if name not in READERS:
        raise ChatExportError(f"unknown format {name!r} (supported: {', '.join(READERS)})")
    if path.is_dir() and not READERS[name].reads_folders:
        raise ChatExportError(f"{path}: a folder, not a {name} export file")
    try:
        yield from READERS[name].read(path, me=me, skipped=skipped, require_owner=require_owner,
                                      dayfirst=dayfirst, notes=notes)
    except UnicodeDecodeError:
        raise ChatExportError(f"{path}: not UTF-8 text, so not a {name} export") from None
    except json.JSONDecodeError as exc:
        raise ChatExportError(f"{path}: not valid JSON, so not a {name} export ({exc.msg})") from None
    except zipfile.BadZipFile:
        raise ChatExportError(f"{path}: a damaged .zip file") from None
    except csv.Error as exc:
        raise ChatExportError(f"{path}: not a readable {name} export ({exc})") from None
    except RecursionError:
        raise ChatExportError(f"{path}: nested deeper than a {name} export is: refused") from None
    except sqlite3.DatabaseError as exc:
        raise ChatExportError(f"{path}: not a readable database, so not a {name} export ({exc})") from None
    except OSError as exc:
        raise ChatExportError(f"{path}: cannot read ({exc.strerror or exc})") from None

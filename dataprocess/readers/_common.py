"""Helpers shared by the export readers: time conversion, JSON loading, skip records.

Time convention for every reader: a ``Message.timestamp`` is a *naive datetime in local time*.
Formats that store an absolute instant (chat.db, Telegram's ``date_unixtime``, Messenger's
``timestamp_ms``, Discord's ISO 8601 with offset) are converted to the local time zone of the
machine running twin and the zone is dropped; WhatsApp exports store the phone's wall-clock
time, which is kept as written. Naive local time is what the iMessage CSV gives and what the
``--since`` cut-off and the reply window compare against.
"""
from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from pathlib import Path

from ..errors import ChatExportError


def local_from_unix(seconds: float) -> datetime:
    """Naive local datetime of a Unix timestamp in seconds."""
    return datetime.fromtimestamp(seconds)


_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def local_from_iso(value: str) -> datetime:
    """Naive local datetime of an ISO 8601 string (an offset, if any, is converted to local).

    Accepts a ``Z`` suffix and .NET's 7-digit fractions (DiscordChatExporter) on any Python.
    """
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", value))
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment


def note_skip(skipped: list | None, path, where: int, reason: str) -> None:
    """Record a malformed record as ``(file, line-or-index, reason)`` when ``skipped`` is a list."""
    if skipped is not None:
        skipped.append((str(path), where, reason))


def load_json(path: Path, what: str):
    """Load a whole JSON export file (JSON exports are read whole: the formats are one object)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise ChatExportError(f"{path}: not a valid {what} export (JSON error at line {exc.lineno}: {exc.msg})") from None


_KEY_RE = re.compile(r'"([A-Za-z_]+)"\s*:')


def json_keys(head: str) -> set[str]:
    """Keys that appear in the first part of a JSON document (cheap sniffing; any nesting level)."""
    text = head.lstrip("\ufeff \t\r\n")
    if not text.startswith("{"):
        return set()
    return set(_KEY_RE.findall(text))


def names_list(names) -> str:
    """A sorted, quoted list of names for an error message."""
    shown = sorted({n for n in names if n})
    more = f" and {len(shown) - 12} more" if len(shown) > 12 else ""
    return ", ".join(repr(n) for n in shown[:12]) + more


def same_name(a: str | None, b: str | None) -> bool:
    """Names compared the way a user types them: case, surrounding spaces and Unicode
    normalisation (macOS file names are NFD) ignored."""
    if a is None or b is None:
        return False
    return unicodedata.normalize("NFC", a.strip()).casefold() == unicodedata.normalize("NFC", b.strip()).casefold()


def unknown_me(path, problem: str, names, me: str | None, label: str = "participants",
               hint: str = "your name as it appears there") -> ChatExportError:
    """The error for an export that does not say which of ``names`` is the owner."""
    given = f"--me {me!r} is none of them" if me else f"pass --me with {hint}"
    return ChatExportError(f"{path}: {problem}; {given} ({label}: {names_list(names)})")

"""Helpers shared by the export readers: time conversion and bounded, streamed JSON.

Time convention for every reader: a ``Message.timestamp`` is a *naive datetime in local time*.
Formats that store an absolute instant (chat.db, Telegram's ``date_unixtime``, Messenger's
``timestamp_ms``, Discord's ISO 8601 with offset) are converted to the local time zone of the
machine running twin and the zone is dropped; WhatsApp exports store the phone's wall-clock
time, which is kept as written. Naive local time is what the iMessage CSV gives and what the
``--since`` cut-off and the reply window compare against.

JSON exports are streamed with ijson (its C backend): a first pass of events (:func:`json_events`)
learns the chats and their senders and checks the nesting depth; a second pass builds one
message object at a time (:func:`json_items`). Memory stays bounded by one message, not the file.

One value could still be huge: ijson builds a string (or a number) whole before the readers'
per-message cap sees it, so a file holding a 500 MB string would cost 500 MB. Every file ijson
reads goes through :class:`_QuoteGuard`, which refuses the file once it has read more than
:data:`MAX_JSON_STRING_BYTES` bytes without a string-opening quote. In JSON a ``"`` that no
backslash precedes always opens or closes a string (inside a string a quote is written ``\\"``),
and every string opens with one, so no string, number or run of whitespace ijson builds can be
longer than that stretch. It costs one ``bytes.rfind`` per chunk read; real exports have a quote
every few dozen bytes.

Before either pass sees them, the bytes go through :class:`~._json_repair.RepairingReader`: a lone
surrogate escape (``"\\ud800"``) is read as U+FFFD and an integer beyond 64 bits makes only its
record malformed, instead of the parser refusing the whole file.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import ijson

from ..errors import ChatExportError
from ._json_repair import RepairingReader
from .base import MAX_JSON_DEPTH, path_text

#: ijson reads this many bytes at a time; it also bounds the events one read can produce, so the
#: depth check below stops a hostile ``[[[[...`` after at most this many levels.
_JSON_BUFFER = 4096
_MAX_PREFIX = MAX_JSON_DEPTH * 16
#: The most bytes ijson may read without a string-opening quote (so the longest string it can
#: build, give or take one read): above any message a reader keeps (``MAX_MESSAGE_CHARS``
#: characters, at most 12 bytes each as ``\uXXXX`` surrogate pairs, is 768 KiB), and no higher,
#: because yajl rescans a string that spans reads from its start at every read: a string of
#: this many bytes of ``\"`` or of non-ASCII text already costs about 2 s to parse with
#: :data:`_JSON_BUFFER`-byte reads (4 MiB of ``\"``: 30 s).
MAX_JSON_STRING_BYTES = 1 << 20
_QUOTE, _BACKSLASH = b'"', 0x5C


def local_from_unix(seconds: float) -> datetime:
    """Naive local datetime of a Unix timestamp in seconds (ValueError/OverflowError/OSError when absurd)."""
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


def json_error(path: Path, what: str, exc: Exception) -> ChatExportError:
    """The one-line error for a JSON file the parser gave up on (truncated, not JSON, ...)."""
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    if "premature EOF" in detail:
        return ChatExportError(f"{path}: a truncated {what} export (the JSON ends early)")
    return ChatExportError(f"{path}: not a valid {what} export (JSON error: {detail})")


class _QuoteGuard:
    """The binary file ijson reads, refusing a stretch of over :data:`MAX_JSON_STRING_BYTES` bytes
    without a quote that no backslash precedes (see the module docstring)."""

    __slots__ = ("_raw", "_path", "_what", "_run", "_last")

    def __init__(self, raw: BinaryIO, path: Path, what: str):
        self._raw, self._path, self._what = raw, path, what
        self._run = 0  # bytes read since the last string quote
        self._last = 0  # the last byte read (a quote at the start of a chunk may be escaped by it)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not data:
            return data
        quote = data.rfind(_QUOTE)
        while quote > 0 and data[quote - 1] == _BACKSLASH:  # \" is a quote inside a string
            quote = data.rfind(_QUOTE, 0, quote)
        if quote == 0 and self._last == _BACKSLASH:
            quote = -1
        self._run = self._run + len(data) if quote < 0 else len(data) - quote - 1
        if self._run > MAX_JSON_STRING_BYTES:
            raise ChatExportError(
                f"{self._path}: a JSON value longer than {MAX_JSON_STRING_BYTES >> 20} MiB "
                f"(no {self._what} export holds one): refused")
        self._last = data[-1]
        return data


@contextmanager
def _json_file(path: Path, what: str, notes: list | None = None, opener=None) -> Iterator[_QuoteGuard]:
    """``path`` opened for ijson (by ``opener()`` when given: a zip member): a UTF-8 byte-order
    mark skipped, lone surrogates and huge integers mended (repairs reported to ``notes``), long
    strings refused."""
    with (opener() if opener is not None else open(path, "rb")) as handle:
        if handle.read(3) != b"\xef\xbb\xbf":
            handle.seek(0)
        yield _QuoteGuard(RepairingReader(handle, path_text(path), notes), path, what)


def json_events(path: Path, what: str, opener=None) -> Iterator[tuple[str, str, Any]]:
    """``(prefix, event, value)`` of a JSON file, as ``ijson.parse`` gives them, depth bounded."""
    with _json_file(path, what, opener=opener) as handle:
        try:
            for prefix, event, value in ijson.parse(handle, buf_size=_JSON_BUFFER, use_float=True):
                if len(prefix) > _MAX_PREFIX:
                    raise ChatExportError(f"{path}: JSON nested deeper than a {what} export is: refused")
                yield prefix, event, value
        except ijson.JSONError as exc:
            raise json_error(path, what, exc) from None


def json_items(path: Path, prefix: str, what: str, notes: list | None = None, opener=None) -> Iterator[Any]:
    """The values at ``prefix`` (``"messages.item"``), one at a time. Call after :func:`json_events`
    has been through the file (it checks the depth this relies on). Characters repaired on the way
    are reported to ``notes`` (``file:line: ...``)."""
    with _json_file(path, what, notes, opener) as handle:
        try:
            yield from ijson.items(handle, prefix, use_float=True)
        except ijson.JSONError as exc:
            raise json_error(path, what, exc) from None


_KEY_RE = re.compile(r'"([A-Za-z_]+)"\s*:')


def json_keys(head: str) -> set[str]:
    """Keys that appear in the first part of a JSON document (cheap sniffing; any nesting level)."""
    text = head.lstrip("\ufeff \t\r\n")
    if not text.startswith("{"):
        return set()
    return set(_KEY_RE.findall(text))

"""The shape every export reader shares, and the guards every reader reads through.

:class:`Reader` is a template method, in the manner of chat-miner's ``Parser``: a platform's
subclass supplies only what differs between exports,

- ``sniff(path, head)``: does this file look like my format?
- ``chats(path)``: the conversations of the export, each a :class:`Chat` (a first look that
  knows its title, whether it is a group, and its senders: id -> names);
- ``records(path, chat)``: ``(where, record)`` pairs of one chat in file order (``where`` is the
  line, index or ROWID a skip report names);
- ``message(record, chat, mine)``: one record -> :class:`~dataprocess.message.Message`; raising
  one of :attr:`Reader.malformed` skips the record, returning None leaves it out silently;
- ``owner(chat, me_ids)``: the ids of the export's owner when the export (or ``--me``) tells.

The first four are abstract (:mod:`abc`): a reader that lacks one fails when it is built, not
when a user first gives it a file. :meth:`Reader.read` runs them, so the per-record skip bookkeeping and the "who is me" rule
live here only:

- ``me`` is matched against every sender's names by :func:`same_person` (case, Unicode form,
  WhatsApp's ``~`` prefix and invisible direction marks ignored) and by id;
- an owner nobody can tell is *nobody*: every message then has ``from_me=False``, as chat-miner's
  parsers do. Only a caller that builds reply pairs passes ``require_owner=True``; then, and only
  when ``--me`` was not given, the reader stops with one error listing the senders to choose from.
  A ``--me`` that names no sender of a chat means I did not write there: the chat is read.

The guards against hostile input (one :class:`~dataprocess.errors.ChatExportError` each, raised
before anything is yielded where the format allows it): :func:`text_lines` reads text in bounded
chunks (a line over :data:`MAX_LINE_CHARS` stops the reader; UTF-8/UTF-16 byte-order marks and
``\\r\\n``, ``\\r\\r\\n`` and ``\\r`` line ends are handled), :func:`zip_member_guard` refuses zip
members that declare too much or inflate too far, and messages over :data:`MAX_MESSAGE_CHARS`
are skipped as malformed.

File names are shown and stored through :func:`path_text`: a name holding bytes that are not
UTF-8 (``os.fsdecode`` turns them into lone surrogates) is written with ``\\xNN`` escapes, so a
summary, a report or a training example can always be encoded.
"""
from __future__ import annotations

import abc
import codecs
import itertools
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Iterable, Iterator

from ..errors import ChatExportError, printable
from ..message import Message

#: A line longer than this (in characters) is no chat export's: the reader stops.
MAX_LINE_CHARS = 1 << 20
#: A message longer than this is skipped as malformed (WhatsApp and Telegram cap theirs at 64 K).
MAX_MESSAGE_CHARS = 1 << 16
#: A zip member larger than this, or inflating more than :data:`MAX_ZIP_RATIO` times, is refused.
MAX_ZIP_MEMBER_BYTES = 4 << 30
MAX_ZIP_RATIO = 100
#: Deeper JSON nesting than this is refused (Telegram's and Discord's records nest 4-6 levels).
MAX_JSON_DEPTH = 64
_CHUNK = 1 << 20

#: An owner nobody can tell, or a chat I did not write in: no message is mine.
NOBODY: frozenset[str] = frozenset()


@dataclass
class Chat:
    """One conversation of an export, as the reader's first look finds it."""

    title: str
    is_group: bool = False
    people: dict[str, set[str]] = field(default_factory=dict)  # sender id -> the names it goes by
    data: Any = None  # the platform's own (a chat object, counts, hints...)
    mine: frozenset[str] = frozenset()  # the owner's ids, once :meth:`Reader.read` has resolved them
    me: str | None = None  # the ``--me`` given (exports that name me only as "Me" use it as my name)
    dayfirst: bool | None = None  # ``--day-first`` (True) / ``--month-first`` (False), for formats that need it
    notes: list[str] = field(default_factory=list)  # what the reader tells the summary (date order, repairs)
    #: (``notes`` go to the caller's list once the chat is read; chats of one file may share one)

    def add_person(self, person_id: str, name: str | None = None) -> None:
        names = self.people.setdefault(person_id, set())
        if name:
            names.add(name)


_INVISIBLE = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"))
_SPACES_RE = re.compile(r"\s+")


def person_key(name: str | None) -> str:
    """A name as a user would type it: NFKC, invisible marks and WhatsApp's ``~`` dropped,
    spaces collapsed (U+202F and U+00A0 are spaces), case folded."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKC", name).translate(_INVISIBLE)
    text = _SPACES_RE.sub(" ", text).strip()
    if text.startswith("~"):
        text = text[1:].lstrip()
    return text.casefold()


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two spellings name the same person (see :func:`person_key`)."""
    key = person_key(a)
    return bool(key) and key == person_key(b)


def names_list(names: Iterable[str]) -> str:
    """A sorted, quoted list of names for an error message."""
    shown = sorted({n for n in names if n})
    more = f" and {len(shown) - 12} more" if len(shown) > 12 else ""
    return ", ".join(repr(n) for n in shown[:12]) + more


#: A string with its lone surrogates made printable (see :func:`dataprocess.errors.printable`).
safe_text = printable


def path_text(path) -> str:
    """A path as shown and stored (summary, report, ``Message.source``): see :func:`safe_text`."""
    return safe_text(str(path))


def note_skip(skipped: list | None, path, where: int, reason: str) -> None:
    """Record a malformed record as ``(file, line-or-index, reason)`` when ``skipped`` is a list."""
    if skipped is not None:
        skipped.append((path_text(path), where, safe_text(reason)))


class Reader(abc.ABC):
    """An export reader: subclasses supply the platform's parts, :meth:`read` runs them."""

    #: The name of the format (a key of ``READERS`` and a ``--format`` choice).
    name: ClassVar[str] = ""
    #: What a sender is called in the owner error ("participants", "senders", "authors").
    people_label: ClassVar[str] = "participants"
    #: How the owner error tells the user to name themselves.
    me_hint: ClassVar[str] = "your name as it appears there"
    #: Exceptions that make one record malformed (skipped and counted) rather than the file.
    malformed: ClassVar[tuple[type[BaseException], ...]] = (
        KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError)
    #: Whether a folder can be given (see :meth:`sniff_dir`).
    reads_folders: ClassVar[bool] = False

    # ---- what a platform supplies

    @abc.abstractmethod
    def sniff(self, path: Path, head: str) -> bool:
        """Whether the file at ``path``, whose first 4 KB decode to ``head``, is in this format."""

    def sniff_dir(self, path: Path) -> bool:
        return False

    @abc.abstractmethod
    def chats(self, path: Path) -> Iterator[Chat]:
        """The conversations of the export (a first look)."""

    @abc.abstractmethod
    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, Any]]:
        """``(where, record)`` of one chat, in the order the messages are to come out."""

    @abc.abstractmethod
    def message(self, record: Any, chat: Chat, mine: frozenset[str]) -> Message | None:
        """One record as a Message (None: left out; an exception of :attr:`malformed`: skipped)."""

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str] | None:
        """The owner's sender ids in ``chat``: ``me_ids`` (those ``--me`` names) unless the export
        says otherwise; :data:`NOBODY` when the export shows none of them is me; None: unknown."""
        return me_ids or None

    def owner_problem(self, chat: Chat) -> str:
        return f"{self.name} chat {chat.title!r} does not say which sender is you"

    # ---- the template

    def read(self, path: Path, me: str | None = None, skipped: list | None = None,
             require_owner: bool = False, *, dayfirst: bool | None = None,
             notes: list | None = None) -> Iterator[Message]:
        """Yield the messages of one export, chat by chat, in file order.

        ``dayfirst`` forces the day/month order where a format leaves it open (WhatsApp);
        ``notes`` (a list) receives what the reader wants the summary to say (the order chosen
        and why, characters repaired)."""
        path = Path(path)
        for chat in self.chats(path):
            chat.me = me
            chat.dayfirst = dayfirst
            mine = chat.mine = self.resolve_owner(path, chat, me, require_owner)
            convert = self.message
            for where, record in self.records(path, chat):
                try:
                    msg = convert(record, chat, mine)
                except self.malformed as exc:
                    note_skip(skipped, self.record_file(path, chat), where, f"{self.where(chat, where)}{exc}")
                    continue
                if msg is None:
                    continue
                if len(msg.text) > MAX_MESSAGE_CHARS:
                    note_skip(skipped, self.record_file(path, chat), where,
                              f"{self.where(chat, where)}a message of {len(msg.text):,} characters "
                              f"(over the {MAX_MESSAGE_CHARS:,} cap)")
                    continue
                yield msg
            if notes is not None and chat.notes:
                notes.extend(chat.notes)
            chat.notes.clear()  # a list some chats of one file share (their stream's repairs)

    def record_file(self, path: Path, chat: Chat) -> Path:
        """The file a skip record names (the export given, unless a folder's reader says which file)."""
        return path

    def where(self, chat: Chat, where: int) -> str:
        """The prefix of a skip reason: which chat and record (empty for one-chat files)."""
        return ""

    def resolve_owner(self, path: Path, chat: Chat, me: str | None, require_owner: bool) -> frozenset[str]:
        """The owner's ids in ``chat``, by the rule in this module's docstring."""
        me_ids: frozenset[str] = NOBODY
        if me:
            wanted = person_key(me)
            me_ids = frozenset(pid for pid, names in chat.people.items()
                               if pid == me.strip() or (wanted and any(person_key(n) == wanted for n in names)))
        found = self.owner(path, chat, me_ids)
        if found is not None:
            return found
        if me or not require_owner or not chat.people:
            return NOBODY
        raise ChatExportError(f"{path}: {self.owner_problem(chat)}; pass --me with {self.me_hint} "
                              f"({self.people_label}: {names_list(self.shown_names(chat))})")

    def shown_names(self, chat: Chat) -> list[str]:
        """The names the owner error lists (every name of every sender, by default)."""
        return [n for pid, ns in chat.people.items() for n in (ns or {pid})]


# ---------------------------------------------------------------- bounded input


def detect_encoding(start: bytes) -> tuple[str, int]:
    """(codec, BOM length) from a file's first bytes: UTF-8 (with or without BOM) or UTF-16 with a BOM."""
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if start.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if start.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    return "utf-8", 0


def decode_head(start: bytes) -> str:
    """The first bytes of a file as text for sniffing (BOM honoured, a cut character replaced)."""
    codec, bom = detect_encoding(start)
    return start[bom:].decode(codec, errors="replace")


_BAD_BYTES = [0]  # bytes the codec could not decode, ever (a reader takes the difference around a call)
_MAX_BYTE_NOTES = 20  # notes about undecodable bytes per file (the count goes on)


def _count_undecodable(exc: UnicodeDecodeError) -> tuple[str, int]:
    _BAD_BYTES[0] += exc.end - exc.start
    return "\ufffd", exc.end


codecs.register_error("twin.replace-counted", _count_undecodable)


class TextLines:
    """The lines of a text stream (iterate it once), and how many bytes were not valid text."""

    __slots__ = ("_lines", "bad_bytes")

    def __init__(self, raw: BinaryIO, where: str, notes: list | None):
        self.bad_bytes = 0
        self._lines = itertools.chain.from_iterable(_line_chunks(raw, where, notes, self))

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def __next__(self) -> str:
        return next(self._lines)


def text_lines(raw: BinaryIO, where: str, notes: list | None = None) -> TextLines:
    """The lines of a text stream, without their line ends, read in bounded chunks.

    Hand-written rather than ``io.TextIOWrapper`` because the wrapper builds a line of any length
    in memory (a 500 MB "line" costs 500 MB) and turns ``\r\r\n`` (old iPhone exports) into two
    line ends. A line over :data:`MAX_LINE_CHARS` raises ChatExportError. Bytes that are not valid
    UTF-8 (UTF-16) are one broken character each, not a broken file: each is read as U+FFFD, the
    line is kept, ``bad_bytes`` counts them and ``notes`` (when a list) gets ``file:line: ...``
    for the first lines holding one (a caller that finds no record at all says "not UTF-8 text").
    The lines of a chunk come out of a list through ``itertools.chain``, so a line costs no
    Python frame switch.
    """
    return TextLines(raw, where, notes)


def _line_chunks(raw: BinaryIO, where: str, notes: list | None, counts: TextLines) -> Iterator[list[str]]:
    first = raw.read(_CHUNK)
    codec, bom = detect_encoding(first)
    decoder = codecs.getincrementaldecoder(codec)("twin.replace-counted")
    chunk = first[bom:]
    carry = ""
    line_no = 0  # lines given so far
    noted = 0
    while True:
        final = not chunk
        before = _BAD_BYTES[0]
        text = carry + decoder.decode(chunk, final)
        bad = _BAD_BYTES[0] - before
        pending = ""
        if "\r" in text:
            if not final and text.endswith("\r"):
                cut = len(text.rstrip("\r"))
                text, pending = text[:cut], text[cut:]
            text = text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        carry = lines.pop() + pending
        if len(carry) > MAX_LINE_CHARS:
            raise ChatExportError(f"{where}: a line longer than {MAX_LINE_CHARS:,} characters: not a chat export")
        if final and carry:
            lines.append(carry)
            carry = ""
        if bad:
            counts.bad_bytes += bad
            if notes is not None and noted < _MAX_BYTE_NOTES:
                at = next((n for n, line in enumerate(lines) if "\ufffd" in line), len(lines))
                notes.append(f"{where}:{line_no + at + 1}: {bad} byte{'s' if bad != 1 else ''} that "
                             f"{'are' if bad != 1 else 'is'} not {codec.upper()} text read as U+FFFD; the text is kept")
                noted += 1
        line_no += len(lines)
        yield lines
        if final:
            return
        chunk = raw.read(_CHUNK)


def zip_member_guard(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a zip member that declares more than :data:`MAX_ZIP_MEMBER_BYTES` or inflates more
    than :data:`MAX_ZIP_RATIO` times (a zip bomb). zipfile never inflates past the declared size."""
    if info.file_size > MAX_ZIP_MEMBER_BYTES:
        raise ChatExportError(f"{path}: {info.filename} inflates to {info.file_size / 2**30:.1f} GiB "
                              f"(over {MAX_ZIP_MEMBER_BYTES >> 30} GiB): refused")
    if info.file_size > _CHUNK and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        raise ChatExportError(f"{path}: {info.filename} inflates {info.file_size / max(info.compress_size, 1):,.0f} "
                              f"times (over {MAX_ZIP_RATIO}x): a zip bomb, refused")

"""Two things in a JSON export that are valid JSON but stop its parser, mended in the byte stream.

ijson's C backend (yajl) gives up on the whole file for one bad value:

- a **lone UTF-16 surrogate escape** (``"\\ud800"``, written when an emoji is cut in half): yajl
  turns it into ``?``, into a wrong character (``"\\ud800\\u0041"`` became U+10041) or into bytes
  that are not UTF-8 ("not UTF-8 text", the file refused);
- an **integer beyond 64 bits** (``"timestamp_ms": 99999999999999999999999``): "integer overflow",
  the file refused.

:class:`RepairingReader` sits between the file and the parser and rewrites them before yajl sees
them: a lone surrogate escape becomes ``\\ufffd`` (U+FFFD, the replacement character; the message
is kept) and a key's integer out of the 64-bit range becomes the string ``"<integer out of range:
N>"``, which no reader takes for a number, so the record holding it is skipped and counted as
malformed while the rest of the file reads. A valid pair (``\\ud83d\\ude00``) is left alone.

A ``"`` that no backslash precedes always opens or closes a string in JSON, and a backslash run
of odd length escapes what follows, so both patterns are recognised without tracking strings:
an escape is a ``\\u`` after an even run of backslashes; an integer value follows ``"`` (not
``\\"``), a colon and spaces, and is followed by ``,``, ``}`` or ``]``. Text inside a message
cannot look like either. The last :data:`_HOLD` bytes of each read wait for the next one, so no
pattern is cut between two reads. Each repair of a character is reported (``file:line``) through
the ``notes`` list given. A read without a backslash-u and without 19 digits in a row costs two
``bytes`` searches.
"""
from __future__ import annotations

import re
from typing import BinaryIO

_HOLD = 128     # bytes kept back from each block: longer than either pattern
_BLOCK = 1 << 16  # bytes read from the file at a time (ijson asks for 4 KB: served from the block)
_BACKSLASH = 0x5C
_INT64 = range(-(1 << 63), 1 << 63)
# A surrogate escape, high (D800-DBFF) or low (DC00-DFFF). The pattern begins with the literal "\u",
# which the regex engine scans for quickly; whether the backslash is an escape (an odd run) and
# whether a high one has its low one right after it is checked on the (few) matches.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# A key's integer value of 19 digits or more (the 64-bit range ends at 19): '": 12345...' + , } ]
_BIG = re.compile(rb'":([ \t\r\n]{0,8})(-?[0-9]{19,64})(?=[ \t\r\n]{0,8}[,}\]])')


class RepairingReader:
    """A binary file whose lone surrogate escapes and out-of-range integers are mended as read."""

    __slots__ = ("_raw", "_where", "_notes", "_held", "_ready", "_lines", "_eof")

    def __init__(self, raw: BinaryIO, where: str, notes: list | None = None):
        self._raw, self._where, self._notes = raw, where, notes
        self._held = b""   # bytes read but not yet mended (the tail that may begin a pattern)
        self._ready = memoryview(b"")  # mended bytes not yet given
        self._lines = 0    # line breaks in the bytes mended so far (for the notes' file:line)
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for 0 bytes to learn whether the file gives bytes or text
            return b""
        while not self._ready and not (self._eof and not self._held):
            self._fill()
        if size is None or size < 0:
            size = len(self._ready)
        out, self._ready = self._ready[:size], self._ready[size:]
        return bytes(out)

    def _fill(self) -> None:
        data = self._raw.read(_BLOCK)
        if not data:
            self._eof = True
        buf = self._held + data
        cut = len(buf)
        if not self._eof:
            cut = _safe_cut(buf, max(cut - _HOLD, 0))
        out, cut = self._mend(buf, cut)
        self._held = buf[cut:]
        self._lines += out.count(b"\n")
        self._ready = memoryview(out)

    def _mend(self, buf: bytes, cut: int) -> tuple[bytes, int]:
        """``buf[:cut]`` mended, and the cut (moved past a pattern that starts before it: the
        :data:`_HOLD` bytes after the cut hold all of it). The bytes before ``buf`` never end in
        a backslash, so a match at 0 is what it looks like."""
        fixes = []
        pending = None  # a high escape waiting for its low one
        for found in _SURROGATE.finditer(buf):
            start = found.start()
            if start >= cut and pending is None:
                break
            if not _escapes(buf, start):
                continue
            high = buf[start + 3] in b"89abAB"
            if pending is not None:
                if not high and start == pending.end():
                    pending = None  # a pair
                    continue
                self._lone(fixes, buf, pending)
                pending = None
                if start >= cut:
                    break
            if high:
                pending = found
            else:
                self._lone(fixes, buf, found)
        if pending is not None:
            self._lone(fixes, buf, pending)
        for found in _BIG.finditer(buf):
            if found.start() >= cut:
                break
            if _escapes(buf, found.start()) and int(found.group(2)) not in _INT64:
                number = found.group(2)
                shown = number[:24] + (b"..." if len(number) > 24 else b"")
                fixes.append((found.start(2), found.end(2), b'"<integer out of range: ' + shown + b'>"'))
        cut = max([cut] + [end for _, end, _ in fixes])
        if not fixes:
            return buf[:cut], cut
        pieces, at = [], 0
        for start, end, text in sorted(fixes):
            if start < at:
                continue
            pieces += (buf[at:start], text)
            at = end
        pieces.append(buf[at:cut])
        return b"".join(pieces), cut

    def _lone(self, fixes: list, buf: bytes, found: re.Match) -> None:
        fixes.append((found.start(), found.end(), b"\\ufffd"))
        self._note(buf, found.start(), found.group().decode())

    def _note(self, buf: bytes, at: int, escape: str) -> None:
        if self._notes is not None:
            line = self._lines + buf.count(b"\n", 0, at) + 1
            self._notes.append(f"{self._where}:{line}: a broken character ({escape}, half of an emoji) "
                               "read as U+FFFD; the message is kept")


def _safe_cut(buf: bytes, cut: int) -> int:
    """The last place at or before ``cut`` that is not inside a backslash run (its parity
    decides what follows), inside a ``\\uXXXX`` escape, or between the halves of a pair."""
    while True:
        start = cut
        while cut and buf[cut - 1] == _BACKSLASH:
            cut -= 1
        escape = buf.rfind(b"\\u", max(cut - 5, 0), cut + 1)  # a "\\u" at cut-5..cut: inside it
        if 0 <= escape < cut:
            cut = escape
        if cut >= 6 and buf[cut - 6:cut - 4] == b"\\u" and buf[cut:cut + 2] == b"\\u":
            cut -= 6
        if cut == start:
            return cut


def _escapes(buf: bytes, at: int) -> bool:
    """Whether the byte at ``at`` (a backslash, or the quote closing a key) is preceded by an even
    run of backslashes: then it is what it looks like, not part of an escape."""
    run = 0
    while at - run - 1 >= 0 and buf[at - run - 1] == _BACKSLASH:
        run += 1
    return run % 2 == 0

"""The errors the data stage raises, each shown to the user as one line by ``core.errors.cli_errors``.

- :class:`ChatExportError`: input the user can fix (an unknown, unreadable, malformed or hostile
  export); exit status 2.
- :class:`BackgroundWorkError`: a helper process of ``twin process`` (the cleaning worker, the
  forked reply counter) died or failed; exit status 1. Nothing is written when it happens.

Both make their message printable: a file name holding bytes that are not UTF-8 (or a lone
surrogate from a broken JSON string) is shown escaped, so printing the error cannot fail.
"""
from __future__ import annotations

import re

from core.errors import InputError, TwinError

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(found: re.Match) -> str:
    code = ord(found.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def printable(text: str) -> str:
    """``text`` with every lone surrogate made printable: an undecodable file-name byte
    (``os.fsdecode``'s surrogateescape, U+DC80-U+DCFF) as ``\\xNN``, any other as U+FFFD."""
    if text.isascii():
        return text
    return _SURROGATE_RE.sub(_escape_surrogate, text)


class ChatExportError(InputError):
    """A chat export that cannot be read: unknown format, unreadable, malformed or hostile.

    An :class:`~core.errors.InputError`: the command shows one line and exits with status 2.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(printable(str(message)))


class BackgroundWorkError(TwinError):
    """A second process of ``twin process`` ended or failed before giving its result back.

    A :class:`~core.errors.TwinError`: one line, exit status 1 (it is not the input's fault).
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(printable(str(message)))

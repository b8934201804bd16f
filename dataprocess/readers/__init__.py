"""Export readers, one module per format, and format detection.

Each reader module offers ``sniff(path, head) -> bool`` (does this file look like my format?)
and ``read(path, me=None, skipped=None) -> Iterator[Message]``. Adding a platform means adding
a module and one line to :data:`READERS`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import ExportError
from ..message import Message
from . import imessage_csv

READERS = {
    "imessage": imessage_csv,
}
FORMATS = ("auto", *READERS)


def _head(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as handle:
        return handle.read(size).decode("utf-8", errors="replace")


def detect_format(path: Path) -> str:
    """Name of the reader whose format ``path`` is in; ExportError when none fits."""
    head = _head(path)
    for name, reader in READERS.items():
        if reader.sniff(path, head):
            return name
    raise ExportError(f"{path}: unrecognised export format (supported: {', '.join(READERS)}); use --format to force one")


def read_export(path, fmt: str | None = None, me: str | None = None,
                skipped: list | None = None) -> Iterator[Message]:
    """Yield the :class:`Message` records of one export file.

    ``fmt`` is a key of :data:`READERS` or ``None``/``"auto"`` to detect it; ``me`` names the
    export's owner where the export does not say; malformed records are skipped and, when
    ``skipped`` is a list, recorded there as ``(file, line, reason)``.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        name = detect_format(path) if fmt in (None, "auto") else fmt
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if name not in READERS:
        raise ExportError(f"unknown format {name!r} (supported: {', '.join(READERS)})")
    try:
        yield from READERS[name].read(path, me=me, skipped=skipped)
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not UTF-8 text, so not a {name} export") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None

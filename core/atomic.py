"""Atomic output helpers: write into a temporary sibling, then rename into place.

Used by every stage for what it writes into the workspace. A file or directory produced
this way either exists complete or not at all:
work happens in a hidden temporary path next to the target (same filesystem, so the final
``os.replace`` is atomic) and the temporary path is removed on any error or interrupt.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def temp_sibling(target: Path, suffix: str = ".tmp") -> Path:
    """A fresh, unused hidden path next to ``target`` (nothing is created there)."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


@contextlib.contextmanager
def atomic_file(target: Path | str, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically.

    On error (or KeyboardInterrupt) the temporary file is deleted and ``target`` is left
    exactly as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(target, suffix)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        os.replace(tmp, target)
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it takes ``target``'s place.

    An existing ``target`` is moved aside first and deleted only after the new directory
    is in place, so an interruption leaves either the old or the new one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary dir
    old: Path | None = None
    try:
        yield tmp
        if target.exists():
            old = temp_sibling(target, ".old")
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old, target)  # put the previous directory back
            old = None
        raise
    finally:
        _remove(tmp)
        if old is not None:
            _remove(old)


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` through a temp file and a rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)

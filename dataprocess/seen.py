"""The messages a workspace has already learned from: WORKSPACE/data/seen.npy.

Every message ``twin process`` reads (every kind, kept or not) leaves a fingerprint here, and
``twin update`` (trainer.update) drops the messages of a new export whose fingerprint is already
in it, so the same export given twice adds nothing and an overlapping one adds only its new
part. A fingerprint is 8 bytes of BLAKE2b over what identifies a message by content and time:
its chat, its sender, its timestamp and its text (not the file it came from, nor ``from_me``,
which depends on ``--me``). The file is a sorted NumPy ``uint64`` array: 8 MB for a million
messages, loaded in milliseconds, checked by binary search a few thousand messages at a time
(chance of two different messages sharing a fingerprint in a million: about 3 in 100 million).
No message text is kept.
"""
from __future__ import annotations

import hashlib
import io
from array import array
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from core.atomic import write_atomic
from core.errors import InputError

from .errors import ChatExportError
from .message import Message

SEEN_FILE = "seen.npy"  # in WORKSPACE/data
CHUNK = 4096            # messages fingerprinted and looked up at once


def digest(message: Message, _blake2b=hashlib.blake2b) -> bytes:
    """The message's fingerprint as 8 bytes (little-endian ``uint64``; see the module docstring)."""
    stamp = message.timestamp.isoformat() if message.timestamp is not None else ""
    key = "\x1f".join((message.chat, message.sender, stamp, message.text))
    return _blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def fingerprint(message: Message) -> int:
    """The message's 64-bit fingerprint (content and time; see the module docstring)."""
    return int.from_bytes(digest(message), "little")


class NothingNew(ChatExportError):
    """``twin update``: every message of the new exports was processed before, or the new ones
    make no reply pair (nothing to learn; the workspace is unchanged)."""


class SeenIndex:
    """A sorted set of fingerprints (NumPy ``uint64``)."""

    def __init__(self, fingerprints: np.ndarray | Iterable[int] = ()):
        values = np.asarray(fingerprints if isinstance(fingerprints, np.ndarray) else array("Q", fingerprints),
                            dtype=np.uint64)
        self.values = np.unique(values)

    def __len__(self) -> int:
        return int(self.values.size)

    def contains(self, fingerprints: np.ndarray) -> np.ndarray:
        """A boolean mask: which of ``fingerprints`` are in the index."""
        if not self.values.size:
            return np.zeros(len(fingerprints), dtype=bool)
        at = np.searchsorted(self.values, fingerprints)
        at[at == self.values.size] = 0
        return self.values[at] == fingerprints

    def union(self, other: "SeenIndex | np.ndarray") -> "SeenIndex":
        more = other.values if isinstance(other, SeenIndex) else np.asarray(other, dtype=np.uint64)
        return SeenIndex(np.concatenate([self.values, more]))

    # -- the file ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str) -> "SeenIndex":
        """The index at ``path``; an empty one when there is none (a workspace processed before
        twin kept it: every message then counts as new)."""
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path} is damaged ({exc}): run `twin process` again") from None
        if values.dtype != np.uint64 or values.ndim != 1:
            raise InputError(f"{path} is not twin's index of processed messages: run `twin process` again")
        index = cls.__new__(cls)
        index.values = values  # written sorted and unique
        return index

    def save(self, path: Path | str) -> None:
        """Written through a temporary file and a rename (core.atomic)."""
        buffer = io.BytesIO()
        np.save(buffer, self.values, allow_pickle=False)
        write_atomic(path, buffer.getvalue())


class Recorder:
    """Passes a message stream through unchanged, keeping each message's fingerprint
    (``twin process``: the index of everything it read)."""

    def __init__(self):
        self._digests = bytearray()   # 8 bytes a message: a fifth quicker than ints in an array("Q")

    def watch(self, messages: Iterable[Message]) -> Iterator[Message]:
        digests = self._digests
        for message in messages:
            digests += digest(message)
            yield message

    def _record(self, value: int) -> None:
        self._digests += value.to_bytes(8, "little")

    def index(self, start: SeenIndex | None = None) -> SeenIndex:
        recorded = np.frombuffer(bytes(self._digests), dtype="<u8").astype(np.uint64)
        return (start or SeenIndex()).union(recorded)


class NewOnly(Recorder):
    """Passes on only the messages not in ``seen`` (nor met earlier in this stream); counts both
    kinds (``twin update``). Looks messages up ``CHUNK`` at a time, so the stream stays a stream."""

    def __init__(self, seen: SeenIndex):
        super().__init__()
        self.seen = seen
        self.new = 0
        self.duplicates = 0
        self._met: set[int] = set()  # this stream's new messages (~100 bytes each; the old stay in NumPy)

    def watch(self, messages: Iterable[Message]) -> Iterator[Message]:
        chunk: list[Message] = []
        for message in messages:
            chunk.append(message)
            if len(chunk) >= CHUNK:
                yield from self._new(chunk)
                chunk = []
        if chunk:
            yield from self._new(chunk)

    def _new(self, chunk: list[Message]) -> Iterator[Message]:
        prints = np.fromiter((fingerprint(m) for m in chunk), dtype=np.uint64, count=len(chunk))
        known = self.seen.contains(prints)
        for message, value, old in zip(chunk, prints.tolist(), known.tolist()):
            if old or value in self._met:
                self.duplicates += 1
                continue
            self._met.add(value)
            self._record(value)
            self.new += 1
            yield message

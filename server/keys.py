"""API keys: one (``--api-key``) or several named ones (``--api-key-file``), checked in
constant time (no Flask here).

A key file holds one named key a line, ``NAME KEY`` (``#`` starts a comment; blank lines are
skipped). Each name gets its own rate limit and its own conversation and reply namespace, so
the people you give keys to neither slow each other down nor see each other's conversations.
A key is at least :data:`MIN_KEY_CHARS` characters with no whitespace; an empty key is refused
at start-up, never taken as "no authentication".
"""
from __future__ import annotations

import hmac
import re
from pathlib import Path

from core.errors import InputError

MIN_KEY_CHARS = 8
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
SINGLE_KEY_NAME = "default"


class KeyRing:
    """Named keys; :meth:`identify` says whose key a request carries."""

    def __init__(self, keys: dict[str, str]):
        if not keys:
            raise InputError("no API key given")
        for name, key in keys.items():
            check_key(key, f"the key of {name!r}")
        if len(set(keys.values())) != len(keys):
            raise InputError("two names share the same API key: give each its own")
        self._keys = [(name, key.encode()) for name, key in keys.items()]

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def single(cls, key: str) -> "KeyRing":
        return cls({SINGLE_KEY_NAME: key})

    @classmethod
    def from_file(cls, path: Path | str) -> "KeyRing":
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the API key file {path}: {exc}") from None
        keys: dict[str, str] = {}
        for number, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not _NAME_RE.match(parts[0]):
                raise InputError(f"{path}:{number}: expected 'NAME KEY' (a name of letters, digits or _.@:- "
                                 "and a key without spaces)")
            if parts[0] in keys:
                raise InputError(f"{path}:{number}: the name {parts[0]!r} is given twice")
            keys[parts[0]] = parts[1]
        if not keys:
            raise InputError(f"the API key file {path} holds no keys")
        return cls(keys)

    def identify(self, given: str) -> str | None:
        """The name of the key ``given`` is, or None; compares with every key in constant time."""
        found = None
        for name, key in self._keys:
            if hmac.compare_digest(given.encode(), key):
                found = name
        return found


def check_key(key: str | None, what: str = "--api-key") -> str:
    """``key`` if it is usable, else an InputError: empty, whitespace or too short keys are refused."""
    if key is None or not key.strip():
        raise InputError(f"{what} is empty: give a real key (or leave the option out)")
    if any(c.isspace() for c in key):
        raise InputError(f"{what} contains whitespace")
    if len(key) < MIN_KEY_CHARS:
        raise InputError(f"{what} is shorter than {MIN_KEY_CHARS} characters: too easy to guess")
    return key

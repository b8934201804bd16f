"""Who the bot answers: the allowlist, the owners (``/pause``, ``/resume``) and group chats.

``--allow`` takes user or chat ids (``123``, ``-100987``), ``@names`` (case does not matter), or
a file of them (one a line, ``#`` comments). Nobody is allowed by default. A message from anyone
else is ignored and only counted (:attr:`Access.ignored`: why, never who or what). Owners are
allowed too and may pause the bot (it then answers nobody) and resume it.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from core.errors import InputError

log = logging.getLogger("twin.bot")


def parse_entries(values: Iterable[str]) -> frozenset[str]:
    """Ids and lowercased @names from ``values``; a value naming an existing file is read."""
    out: set[str] = set()
    for value in values:
        value = value.strip()
        path = Path(value)
        if value and not value.startswith("@") and not value.lstrip("-").isdigit():
            if not path.is_file():
                raise InputError(f"--allow/--owner {value!r} is not an id, an @name or a file of them")
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read {value}: {exc}") from None
            out |= parse_entries(line.split("#", 1)[0] for line in lines if line.split("#", 1)[0].strip())
            continue
        for item in value.replace(",", " ").split():
            if item.startswith("@") and len(item) > 1:
                out.add(item.lower())
            elif item.lstrip("-").isdigit():
                out.add(str(int(item)))
            else:
                raise InputError(f"--allow/--owner {item!r} is not an id or an @name")
    return frozenset(out)


class Access:
    def __init__(self, allowed: Iterable[str] = (), owners: Iterable[str] = (), groups: bool = False) -> None:
        self.allowed, self.owners, self.groups = frozenset(allowed), frozenset(owners), groups
        self.paused = False
        self.ignored: Counter = Counter()

    @staticmethod
    def _keys(user_id, username, chat_id) -> set[str]:
        keys = {str(k) for k in (user_id, chat_id) if k is not None}
        if username:
            keys.add("@" + str(username).lower().lstrip("@"))
        return keys

    def is_owner(self, user_id, username) -> bool:
        return bool(self._keys(user_id, username, None) & self.owners)

    def allows(self, user_id, username, chat_id) -> bool:
        keys = self._keys(user_id, username, chat_id)
        return bool(keys & self.allowed or keys & self.owners)

    def turned_away(self, user_id, username, chat_id, group: str | None = None) -> bool:
        """Whether a message (not an owner's command) is ignored before the bot reads it: a sender
        not on the allowlist, a paused bot, or a ``group`` chat (the platform's word for it) while
        groups are off. An ignored message is counted (:meth:`ignore`)."""
        if not self.allows(user_id, username, chat_id):
            why = "not on the allowlist"
        elif self.paused:
            why = "paused"
        elif group and not self.groups:
            why = f"{group} (see --groups)"
        else:
            return False
        self.ignore(why)
        return True

    def ignore(self, why: str) -> None:
        """Count an ignored message (the log line holds the counts only)."""
        self.ignored[why] += 1
        log.info("ignored a message (%s); ignored so far: %s", why,
                 ", ".join(f"{n} {k}" for k, n in sorted(self.ignored.items())))

    def command(self, text: str, user_id, username) -> str | None:
        """An owner's ``/pause`` or ``/resume`` (``/pause@botname`` too): the answer to send, else None."""
        words = text.split()
        word = words[0].split("@", 1)[0].lower() if words else ""
        if word not in ("/pause", "/resume") or not self.is_owner(user_id, username):
            return None
        self.paused = word == "/pause"
        log.info("paused by an owner" if self.paused else "resumed by an owner")
        return "paused: I answer nobody until /resume" if self.paused else "resumed"

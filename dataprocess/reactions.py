"""Recognising reactions (tapbacks) that some platforms store as ordinary text messages."""
from __future__ import annotations

import re

_QUOTED = r"[“\"'‘].*[”\"'’]"
_VERBS = r"(?:loved|liked|disliked|laughed at|emphasized|emphasised|questioned|reacted .{1,8} to)"

# iMessage tapbacks as iPhones store them ("Loved “see you at 7”"), the form Android phones
# send to iPhones ("Maya laughed at "see you at 7""), and removals ("Removed a heart from “…”").
_TAPBACK_RE = re.compile(
    rf"^\s*(?:(?:\S+\s){{0,3}}?{_VERBS}|removed an? \S+ from)\s+(?:an? (?:image|attachment|movie|link)|{_QUOTED})\s*$",
    re.IGNORECASE | re.DOTALL,
)


def is_tapback(text: str) -> bool:
    """True when ``text`` is a reaction to another message rather than a message itself."""
    return bool(_TAPBACK_RE.match(text))

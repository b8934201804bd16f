"""Text cleaning rules applied to every message kept for training.

Each rule is a small function so it can be tested and turned off on its own. Cleaning only
touches what it targets: letters of any script (Hebrew, Cyrillic, Vietnamese with its combining
marks) pass through unchanged apart from lowercasing.
"""
from __future__ import annotations

import re

URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|org|net|io|ly|co|me|app|dev)/\S*",
                    re.IGNORECASE)
REPEAT_RE = re.compile(r"(.)\1{3,}", re.DOTALL)
EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Phone numbers: an optional +country code, then 7+ digits in groups split by spaces, dots,
# dashes or brackets. Years and times are too short to match.
PHONE_RE = re.compile(r"(?<![\w+(])(?:\+?\d{1,3}[\s.-]?)?\(?\d{2,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?!\w)")

# Emoji and pictographs (with their modifiers, variation selectors, keycaps and joiners).
# Ranges are explicit so that no letter or combining mark of any script is caught.
EMOJI_RE = re.compile(
    "["
    "\U0001F000-\U0001FAFF"  # mahjong .. symbols & pictographs extended-A (incl. skin tones)
    "\U00002600-\U000027BF"  # misc symbols, dingbats
    "\U00002B00-\U00002BFF"  # arrows, stars
    "\U0001F1E6-\U0001F1FF"  # regional indicators (flags)
    "\U0000FE0E\U0000FE0F"   # variation selectors
    "\U0000200D"             # zero-width joiner
    "\U000020E3"             # combining keycap
    "\U00002190-\U000021FF"  # arrows
    "\U00002300-\U000023FF"  # misc technical (watch, hourglass)
    "\U000E0020-\U000E007F"  # tag characters (subdivision flags)
    "]+"
)
_SPACES_RE = re.compile(r"[ \t\u00a0\u202f]+")


def replace_urls(text: str, word: str = "link") -> str:
    return URL_RE.sub(word, text)


def squash_repeats(text: str, keep: int = 3) -> str:
    """Any character repeated more than ``keep`` times is cut to ``keep`` (oooooh -> oooh)."""
    return re.sub(r"(.)\1{%d,}" % keep, lambda m: m.group(1) * keep, text, flags=re.DOTALL)


def strip_emoji(text: str) -> str:
    return EMOJI_RE.sub("", text)


_DATE_RE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


def _phone_or_keep(match: re.Match) -> str:
    found = match.group()
    if sum(c.isdigit() for c in found) < 7 or _DATE_RE.fullmatch(found.strip()):
        return found
    return "<phone>"


def scrub_personal_data(text: str) -> str:
    """Replace email addresses and phone numbers with typed placeholders."""
    return PHONE_RE.sub(_phone_or_keep, EMAIL_RE.sub("<email>", text))


def normalise_spaces(text: str) -> str:
    lines = (_SPACES_RE.sub(" ", line).strip() for line in text.splitlines())
    return " ".join(line for line in lines if line)


def clean_text(text: str, *, lowercase: bool = True, urls: bool = True, emoji: bool = True,
               repeats: bool = True, scrub: bool = True) -> str:
    """Apply the enabled rules in order; returns '' when nothing is left."""
    if scrub:
        text = scrub_personal_data(text)
    if urls:
        text = replace_urls(text)
    if emoji:
        text = strip_emoji(text)
    if lowercase:
        text = text.lower()
    if repeats:
        text = squash_repeats(text)
    return normalise_spaces(text)

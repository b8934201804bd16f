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
# Runs of 2+ spaces, or any tab / no-break space: a single plain space is left alone, so a
# one-line message costs one scan and no replacement.
_SPACES_RE = re.compile(r"[ \t\u00a0\u202f]{2,}|[\t\u00a0\u202f]")
_DIGIT_RE = re.compile(r"\d")


def replace_urls(text: str, word: str = "link") -> str:
    return URL_RE.sub(word, text)


def squash_repeats(text: str, keep: int = 3) -> str:
    """Any character repeated more than ``keep`` times is cut to ``keep`` (oooooh -> oooh)."""
    if keep == 3:
        # search first: most messages repeat nothing, and a search is half the cost of a sub
        return REPEAT_RE.sub(r"\1\1\1", text) if REPEAT_RE.search(text) else text
    return re.sub(r"(.)\1{%d,}" % keep, lambda m: m.group(1) * keep, text, flags=re.DOTALL)


def strip_emoji(text: str) -> str:
    return EMOJI_RE.sub("", text)


# Card numbers: 13-19 digits, optionally in groups split by spaces or dashes (checked with Luhn).
CARD_RE = re.compile(r"(?<![\w+])(?:\d[ -]?){12,18}\d(?!\w)")
# IBAN: country code, check digits, then 11-30 letters/digits, optionally in groups of four.
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", re.IGNORECASE)
# Account / routing / sort-code numbers when named as such.
ACCOUNT_RE = re.compile(r"\b((?:account|acct|a/c|routing|sort code|konto|cuenta|compte)\s*(?:number|no\.?|num|#)?\s*:?\s*)"
                        r"[\d][\d -]{4,}\d\b", re.IGNORECASE)
_STREET_WORDS = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|"
                 r"Terrace|Parkway|Pkwy|Highway|Hwy|Circle|Cir")
_STREET_ABBREVIATIONS = r"st|ave|rd|blvd|ln|dr|pkwy|hwy"
# Street addresses, matched on the original text (before lowercasing): a house number, one to
# three capitalised words and a street-type word ("2145 Telegraph Ave"); in any case a number,
# one or two words and an abbreviation ("5 main st"); and the German order ("Hauptstraße 12").
# Lowercase prose ("5 miles down the road") is left alone; so are addresses in other orders.
ADDRESS_RE = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){{1,3}}(?i:{_STREET_WORDS})\b\.?"
    rf"|(?i:\b\d{{1,5}}[a-z]?\s+(?:[a-z][\w'-]*\s+){{1,2}}(?:{_STREET_ABBREVIATIONS})\b\.?)"
    r"|(?i:\b[\w-]+(?:stra(?:ß|ss)e|weg|gasse|allee|platz)\s+\d{1,5}[a-z]?\b)")


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for index, char in enumerate(digits):
        value = int(char)
        if index % 2 == parity:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_or_keep(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "<card>" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group()


def _iban_or_keep(match: re.Match) -> str:
    found = match.group()
    compact = found.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not any(c.isdigit() for c in compact[4:]):
        return found
    # ISO 13616 check: move the first four characters to the end, letters -> numbers, mod 97 == 1
    number = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return "<iban>" if int(number) % 97 == 1 else found


_DATE_RE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


def _phone_or_keep(match: re.Match) -> str:
    found = match.group()
    if sum(c.isdigit() for c in found) < 7 or _DATE_RE.fullmatch(found.strip()):
        return found
    return "<phone>"


def scrub_personal_data(text: str) -> str:
    """Replace emails, IBANs, card and account numbers, phone numbers and street addresses
    with typed placeholders (``<email>``, ``<iban>``, ``<card>``, ``<account>``, ``<phone>``,
    ``<address>``). Order matters: the specific patterns run before the phone number's."""
    if "@" in text:
        text = EMAIL_RE.sub("<email>", text)
    if _DIGIT_RE.search(text) is None:
        return text  # every other pattern needs a digit: most messages stop here
    text = IBAN_RE.sub(_iban_or_keep, text)
    text = CARD_RE.sub(_card_or_keep, text)
    text = ACCOUNT_RE.sub(lambda m: m.group(1) + "<account>", text)
    text = PHONE_RE.sub(_phone_or_keep, text)
    return ADDRESS_RE.sub("<address>", text)


_LINE_BREAK_RE = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # what str.splitlines splits at


def normalise_spaces(text: str) -> str:
    # Fast path, one C scan: every line break, tab and no-break space is "not printable" to
    # str.isprintable, so a printable text only needs double spaces collapsed.
    if text.isprintable():
        return (_SPACES_RE.sub(" ", text) if "  " in text else text).strip()
    if _LINE_BREAK_RE.search(text) is None:  # one line: no splitting needed
        return _SPACES_RE.sub(" ", text).strip()
    lines = (_SPACES_RE.sub(" ", line).strip() for line in text.splitlines())
    return " ".join(line for line in lines if line)


# What the personal-data and URL rules need in a text: a digit, "@", "/" or "www.". A printable
# text (no line break, tab or no-break space) without any of them (most chat messages) only needs
# its emoji stripped, lowercasing, repeats squashed and spaces collapsed: clean_text's fast path.
# Each check is the cheapest scan that answers it (measured per message on a generated history:
# one character class 0.6 us where an alternation with "www" and "  " took 2.4-3.5 us; four equal
# characters as (.)\1\1\1 0.6 us where REPEAT_RE's open-ended (.)\1{3,} takes 1.5-1.9 us).
_DIGIT_AT_SLASH_RE = re.compile(r"[\d@/]")
_FIRST_EMOJI = "\u200d"  # the lowest code point EMOJI_RE removes (the zero-width joiner)
_FOUR_SAME_RE = re.compile(r"(.)\1\1\1", re.DOTALL)


def clean_text(text: str, *, lowercase: bool = True, urls: bool = True, emoji: bool = True,
               repeats: bool = True, scrub: bool = True) -> str:
    """Apply the enabled rules in order; returns '' when nothing is left."""
    if text.isprintable() and _DIGIT_AT_SLASH_RE.search(text) is None:
        lowered = text.lower()
        if "www." not in lowered:
            out = lowered if lowercase else text
            # every emoji range starts at U+200D or above (Cyrillic, Hebrew, Vietnamese... are
            # below: no scan for those); no emoji has a case, so lowercasing first changes nothing
            if emoji and not out.isascii() and max(out) >= _FIRST_EMOJI:
                out = EMOJI_RE.sub("", out)
            if _FOUR_SAME_RE.search(out) is None:  # after lowercasing: "aAaA" is a repeat too
                # printable: no line break, tab or no-break space; only double spaces (left where
                # an emoji was, say) are collapsed
                return (_SPACES_RE.sub(" ", out) if "  " in out else out).strip()
    return apply_rules(text, lowercase=lowercase, urls=urls, emoji=emoji, repeats=repeats, scrub=scrub)


def apply_rules(text: str, *, lowercase: bool = True, urls: bool = True, emoji: bool = True,
                repeats: bool = True, scrub: bool = True) -> str:
    """:func:`clean_text` without its fast path: every enabled rule, in order."""
    if scrub:
        text = scrub_personal_data(text)
    if urls and ("/" in text or "www." in text.lower()):  # every URL pattern needs one of them
        text = replace_urls(text)
    if emoji and not text.isascii():  # every emoji range is far above ASCII
        text = strip_emoji(text)
    if lowercase:
        text = text.lower()
    if repeats:
        text = squash_repeats(text)
    return normalise_spaces(text)

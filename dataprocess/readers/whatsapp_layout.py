"""WhatsApp header layouts: which lines start a message, decided from the whole file.

One regular expression finds every header WhatsApp has written since 2012::

    [31/12/2024, 21:05:09] Name: text          iOS
    31/12/2024, 21:05 - Name: text             Android
    09/12/2012 17:02:35: Name: text            2012-2016, neither brackets nor " - "
    7/8/12, 3:20:08 PM: Name: text             old iOS (often a BOM and \\r\\r\\n line ends)
    13.06.18 21.25.15: Name: text              dotted time
    13.6.2018 klo 21.25.15 - Name: text        Finnish
    13. 6. 2018. 21:25:15 Name: text           Hungarian / Croatian (no separator at all)
    [2018/06/13, 21:25:15] Name: text          year first
    15/12/2025, 10:34:00 AM Name: text         iOS copied by some tools

The *layout* of a header is its shape: brackets, date separator, comma, ``klo``, time separator,
seconds or not, 12- or 24-hour clock, what closes it, year digits, and whether the hour and the
day/month are zero-padded. :class:`LayoutScan` counts the layouts of a whole file in the first
pass; :meth:`LayoutScan.decide` keeps the file's own layouts (the most frequent one and any
other at least 1/20 as frequent, as in a file that mixes Android and iOS lines), and a line in
another layout, or with a padding under 1/20 of its layout's lines, is part of the message
before it (``[1.2.2019, 00:00:00] Name: …`` quoted inside a non-padded iOS file). A line of a
less frequent kept layout, or with its layout's less frequent padding, starts a message only
if it does not go back in time (a quoted header is older than the message quoting it). Day-first or month-first is decided per layout from all its dates: a
first field above 12 means day-first, a second above 12 month-first, else the order under which
the dates run forwards with fewer backward steps. When the dates run forward either way (a short
chat, a 2012 chat that never passes the 12th), :func:`choose_order` weighs the rest of the file's
evidence: a 24-hour clock, ``dd/mm/yyyy`` padding and dotted dates point to day-first locales, an
AM/PM clock with ``m/d/yy`` to the US; media placeholders and system lines in a language other
than English (``<Media omessi>``, ``I messaggi e le chiamate sono crittografati``) point to
day-first, as every such locale WhatsApp writes is. The remaining tie goes to day-first, as in most
locales. ``--day-first``/``--month-first`` force the order; the reader's note says which order was
chosen and why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADER_RE = re.compile(
    r"\[?(\d{1,4}(?:[./-]|\. )\d{1,2}(?:[./-]|\. )\d{1,4})\.?,?\s(?:klo\s)?"  # 1 date
    r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"                                 # 2 hour, 3 minute, 4 second
    r"(\s?[AaPp]\.?\s?[Mm]\.?)?"                                           # 5 AM/PM
    r"(?:\]\s|\s[-–]\s|:\s|\s)")                                            # what closes the header
PADDED, UNPADDED, EITHER = "P", "N", "?"
_DIGITS_RE = re.compile(r"\d+")
_HALF_RE = re.compile(r"[AaPp](?=\.?\s?[Mm])")


def layout_key(header: str) -> str:
    """The shape of a header, without its digits ("[#/#/#, #:#:# xM] "): brackets, separators,
    seconds, clock, what closes it. Padding is not part of it (:func:`date_pad`, :func:`hour_pad`)."""
    return _DIGITS_RE.sub("#", _HALF_RE.sub("x", header))


def date_fields(text: str) -> list[str]:
    """["13", "02", "2024"] from "13/02/2024", "13.02.2024", "13. 2. 2024" (any of ./- and ". ")."""
    for sep in ("/", "-", ". ", "."):
        if sep in text:
            return [f.strip() for f in text.split(sep)]
    raise ValueError(text)


def _pad(fields: list[str]) -> str:
    if any(len(f) == 1 for f in fields):
        return UNPADDED
    if any(f[0] == "0" for f in fields):
        return PADDED
    return EITHER


def date_pad(date_text: str) -> str:
    """Whether the day and month are zero-padded (P), not (N), or cannot tell (both >= 10)."""
    fields = date_fields(date_text)
    return _pad(fields[1:] if len(fields[0]) == 4 else fields[:2])


def hour_pad(hour: str) -> str:
    return UNPADDED if len(hour) == 1 else PADDED if hour[0] == "0" else EITHER


REJECT, SUSPECT, FITS = 0, 1, 2


@dataclass
class Layout:
    """What the first pass learns about one layout: its count, padding and date order."""

    count: int = 0
    date_pads: dict[str, int] = field(default_factory=lambda: {PADDED: 0, UNPADDED: 0, EITHER: 0})
    hour_pads: dict[str, int] = field(default_factory=lambda: {PADDED: 0, UNPADDED: 0, EITHER: 0})
    max_first: int = 0
    max_second: int = 0
    back_dayfirst: int = 0
    back_monthfirst: int = 0
    last_dm: tuple = (0, 0, 0)
    last_md: tuple = (0, 0, 0)
    first_date: str = ""  # the first date written in this layout (the note's example)
    accepted: bool = False
    date_style: tuple[str, bool] = (EITHER, False)  # (the padding most lines have, whether others are refused)
    hour_style: tuple[str, bool] = (EITHER, False)

    def add_date(self, date_text: str) -> None:
        fields = date_fields(date_text)
        if len(fields[0]) == 4:
            return
        first, second, year = int(fields[0]), int(fields[1]), int(fields[2])
        if not self.first_date:
            self.first_date = date_text
        self.max_first = max(self.max_first, first)
        self.max_second = max(self.max_second, second)
        key_dm, key_md = (year, second, first), (year, first, second)
        if key_dm < self.last_dm:
            self.back_dayfirst += 1
        if key_md < self.last_md:
            self.back_monthfirst += 1
        self.last_dm, self.last_md = key_dm, key_md

    @property
    def mixed(self) -> bool:
        """Whether some lines have the other padding than most (quoted headers, or a mixed file)."""
        return any(style != EITHER and pads[PADDED if style == UNPADDED else UNPADDED]
                   for (style, _), pads in ((self.date_style, self.date_pads), (self.hour_style, self.hour_pads)))

    def judge(self, date_p: str, hour_p: str) -> int:
        """FITS, SUSPECT (the other padding than most lines: a message only if it does not go back
        in time) or REJECT (that padding is too rare to be this file's: a quoted header)."""
        verdict = FITS
        for (style, refuse), pad in ((self.date_style, date_p), (self.hour_style, hour_p)):
            if style != EITHER and pad not in (EITHER, style):
                if refuse:
                    return REJECT
                verdict = SUSPECT
        return verdict


def _style(pads: dict[str, int]) -> tuple[str, bool]:
    """The padding most lines of a layout have, and whether the other kind is rare enough
    (under 1 in 20) to be refused outright."""
    padded, unpadded = pads[PADDED], pads[UNPADDED]
    if padded == unpadded:
        return EITHER, False
    major, minor = max(padded, unpadded), min(padded, unpadded)
    return (PADDED if padded > unpadded else UNPADDED), minor * 20 < major


@dataclass
class LayoutScan:
    """The layouts of one file (first pass), and after :meth:`decide` which of them are its own."""

    layouts: dict[str, Layout] = field(default_factory=dict)
    single: bool = True  # one layout and one padding: every header match is a header

    def decide(self) -> None:
        """Keep the most frequent layout and any other at least 1/20 as frequent."""
        if not self.layouts:
            return
        top = max(layout.count for layout in self.layouts.values())
        for layout in self.layouts.values():
            layout.accepted = layout.count * 20 >= top
            layout.date_style, layout.hour_style = _style(layout.date_pads), _style(layout.hour_pads)
        self.single = len(self.layouts) == 1 and not any(layout.mixed for layout in self.layouts.values())

    def main(self) -> Layout:
        return max(self.layouts.values(), key=lambda layout: layout.count)


def time_of(parts: tuple) -> tuple[int, int, int] | None:
    """(hour, minute, second) of a header's groups 2-5, 12-hour clocks converted; None when impossible."""
    hour, minute, second = int(parts[0]), int(parts[1]), int(parts[2] or 0)
    half = parts[3]
    if half is not None:
        if hour > 12 or hour == 0:
            return None
        if "p" in half or "P" in half:
            if hour < 12:
                hour += 12
        elif hour == 12:
            hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


#: The languages of the placeholders and system lines that tell a locale; English says nothing
#: (the US writes month-first, the UK, India and Australia day-first).
LANGUAGE_NAMES = {"it": "Italian", "de": "German", "es": "Spanish", "fr": "French", "pt": "Portuguese",
                  "nl": "Dutch", "ru": "Russian", "en": "English"}
# The end-to-end notice and other system lines, by language (looked for on system lines only).
SYSTEM_LANGUAGE_RE = {
    "it": re.compile(r"crittografat|ha creato il gruppo|ha aggiunto|ha abbandonato|Chiamata (?:vocale|video) persa"),
    "de": re.compile(r"verschlüsselt|hat die Gruppe|hat .{1,40} hinzugefügt|Verpasster"),
    "es": re.compile(r"cifrad|creó el grupo|añadió|Llamada perdida"),
    "fr": re.compile(r"chiffr|a créé le groupe|a ajouté|Appel .{1,10}manqué"),
    "pt": re.compile(r"criptografad|criou o grupo|adicionou|Chamada .{1,10}perdida"),
    "nl": re.compile(r"versleuteld|heeft groep|heeft .{1,40} toegevoegd|Gemiste"),
    "ru": re.compile(r"шифрован|создал[аи]? групп|добавил|Пропущенный"),
    "en": re.compile(r"end-to-end encrypted|created group|\badded\b|Missed (?:voice|video) call"),
}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def choose_order(layout: Layout, key: str, languages: dict[str, int],
                 forced: bool | None = None) -> tuple[bool, str | None]:
    """(day-first?, why) for one layout: forced, a field above 12, fewer backward steps, then the
    hints of the module docstring. ``why`` is None when a field above 12 settles it (nothing to say)."""
    if forced is not None:
        return forced, "as " + ("--day-first" if forced else "--month-first") + " asks"
    if layout.max_first > 12:
        return True, None
    if layout.max_second > 12:
        return False, None
    if layout.back_dayfirst != layout.back_monthfirst:
        day = layout.back_dayfirst < layout.back_monthfirst
        steps = max(layout.back_dayfirst, layout.back_monthfirst)
        return day, (f"no day above 12; read {'month' if day else 'day'}-first the dates would go back "
                     f"in time {steps} time{'s' if steps != 1 else ''}")
    day, month = [], []
    (month if "x" in key else day).append("a 12-hour clock" if "x" in key else "a 24-hour clock")
    if "." in (layout.first_date or "") and "/" not in layout.first_date:
        day.append("dotted dates")
    elif layout.first_date:
        fields = date_fields(layout.first_date)
        if len(fields[2]) == 2 and _pad(fields[:2]) == UNPADDED:
            month.append("m/d/yy dates")
        elif len(fields[2]) == 4 and _pad(fields[:2]) != UNPADDED:
            day.append("dd/mm/yyyy dates")
    spoken = sorted((n, lang) for lang, n in languages.items() if n and lang != "en")
    if spoken:
        day.append(f"{LANGUAGE_NAMES[spoken[-1][1]]} system lines and placeholders")
    weight = len(day) + (1 if spoken else 0) - len(month)
    first = weight >= 0
    chosen = day if first else month
    return first, ("no day above 12 and the dates run forward either way; " + ", ".join(chosen or ["no hint"])
                   + f" point{'s' if len(chosen) == 1 else ''} to {'day' if first else 'month'}-first")


def order_note(source: str, layout: Layout, dayfirst: bool, why: str) -> str:
    """The summary's line: which order, an example date read that way, and why."""
    example = ""
    if layout.first_date:
        fields = date_fields(layout.first_date)
        if len(fields[0]) != 4:
            day, month = (int(fields[0]), int(fields[1])) if dayfirst else (int(fields[1]), int(fields[0]))
            year = int(fields[2]) + (2000 if len(fields[2]) <= 2 else 0)
            if 1 <= month <= 12:
                example = f" ({layout.first_date} is {day} {_MONTHS[month - 1]} {year})"
    return f"{source}: dates read {'day' if dayfirst else 'month'}-first{example}: {why}"

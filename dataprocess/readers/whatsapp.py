"""Reader for WhatsApp chat exports: the ``.txt`` file and the ``.zip`` the phone shares.

Both phone layouts are read, line by line (bounded memory; a ``.zip`` is read in place, never
extracted to disk)::

    iOS      [31/12/2024, 21:05:09] Alex: text        (U+200E marks before "[" and placeholders)
    Android  31/12/2024, 21:05 - Alex: text

Times: 24-hour or 12-hour clocks (``PM``, ``pm``, ``p. m.``, ``p.m.``, with an ordinary, a
no-break or a narrow no-break space U+202F before them), with or without seconds. Dates: ``/``,
``.`` or ``-`` separated; 2- or 4-digit years; year-first when the first field has 4 digits
(``2024-12-31``). Timestamps are the phone's wall-clock time, kept naive as written.

**Day-first or month-first** is decided from the whole file, in a first pass over the message
headers (a cheap scan that also collects the participants): if any first field is above 12 the
file is day-first; else if any second field is above 12 it is month-first; else (every date of
the file has both fields <= 12) the order under which the message dates run forwards in time
with fewer backward steps wins, ties going to day-first (the order of most locales).

Messages: a line that does not start with a message header continues the message before it
(multi-line messages keep their line breaks). U+200E/U+200F marks are stripped from names and
text. A header line with no ``Name:`` part (group created, X added Y, security code changed,
the end-to-end encryption notice, ...) is a ``system`` message; so is an iOS notice filed under
the group's own name or starting with U+200E (``‎Missed voice call``). Media placeholders
(``<Media omitted>``, ``image omitted``, ``<attached: 00000012-PHOTO-….jpg>``, ``sticker
omitted``, ``… (file attached)`` and their German, Spanish, French, Italian, Portuguese, Dutch
and Russian forms) are ``media``; ``This message was deleted`` / ``You deleted this message``
(and translations) are ``system``; a trailing ``<This message was edited>`` is removed.
A header with an impossible date (``31/02/2024``) is skipped with its continuation lines and
recorded as malformed; so is text before the first header.

**Who is me.** The export does not say. ``me`` (``--me``) names the owner when it matches a
participant (case-insensitive); otherwise the owner is inferred only when unambiguous: the one
sender of ``You deleted this message`` lines, or, in a one-on-one chat whose file is named
after the contact (``WhatsApp Chat with Alex.txt``, ``WhatsApp Chat - Alex.zip``), the other
participant. Failing that, ChatExportError asks for ``--me`` and lists the participants.

**Chat and group.** The chat is the name in the file name when there is one, else the other
participant (one-on-one) or the file's name (group). A chat is a group when it has more than two
participants, when iOS files notices under the group's name, or when a system line speaks of
a group (created group, added, removed, left, ...). ``sender`` is the name as the export writes it.
"""
from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Callable, ContextManager, Iterator, TextIO

from ..errors import ChatExportError
from ..message import Message
from ._common import note_skip, same_name, unknown_me

if [f.name for f in fields(Message)][:8] != ["sender", "text", "timestamp", "chat", "from_me", "kind",
                                             "is_group", "source"]:  # pragma: no cover
    raise ImportError("whatsapp reader: Message fields changed order; update the positional construction")

_MARKS = "\ufeff\u200e\u200f"
_MARK_START = frozenset(_MARKS)

# "[date, time] " (iOS) or "date, time - " (Android): group 1 the date, group 2 the time.
_HEADER_RE = re.compile(
    r"\[?(\d{1,4}[./-]\d{1,2}[./-]\d{1,4})\.?,?\s(\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?\s?[Mm]\.?)?)"
    r"(?:\]\s|\s[-–]\s)")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp]))?")
_SEPARATORS = "./-"

# Placeholders and markers WhatsApp writes as the whole message, by language; their usual
# spellings go into one dict, so the common path costs one lookup and no regex.
_ANDROID_MEDIA = ("<Media omitted>", "<Medien ausgeschlossen>", "<Multimedia omitido>", "<Média omis>",
                  "<Médias omis>", "<Media omessi>", "<Mídia oculta>", "<Arquivo de mídia oculto>",
                  "<Media weggelaten>", "<Без медиафайлов>")
_IOS_MEDIA = {  # "image omitted" and its translations: kinds x word for "omitted"
    ("image", "video", "audio", "sticker", "GIF", "document", "Contact card", "photo"): ("omitted",),
    ("imagen", "sticker", "audio", "video", "GIF", "documento", "tarjeta de contacto"): ("omitido", "omitida"),
    ("Bild", "Video", "Audio", "Sticker", "GIF", "Dokument", "Kontaktkarte"): ("weggelassen",),
    ("image", "vidéo", "audio", "sticker", "GIF", "document"): ("omis", "omise", "absent", "absente"),
    ("immagine", "video", "audio", "sticker", "GIF", "documento"): ("omesso", "omessa"),
    ("imagem", "vídeo", "áudio", "figurinha", "sticker", "documento"): ("ocultado", "ocultada"),
    ("изображение", "видео", "аудио", "стикер", "GIF", "документ"): ("отсутствует",),
}
_YOU_DELETED = ("You deleted this message", "Eliminaste este mensaje", "Du hast diese Nachricht gelöscht",
                "Vous avez supprimé ce message", "Hai eliminato questo messaggio", "Você apagou esta mensagem",
                "Je hebt dit bericht verwijderd", "Вы удалили это сообщение")
_DELETED = ("This message was deleted", "Se eliminó este mensaje", "Diese Nachricht wurde gelöscht",
            "Ce message a été supprimé", "Questo messaggio è stato eliminato", "Essa mensagem foi apagada",
            "Dit bericht is verwijderd", "Это сообщение удалено")


def _spellings(phrase: str) -> set[str]:
    """The ways a marker may be written: as is, capitalised or not, with or without a final period."""
    forms = {phrase, phrase[:1].upper() + phrase[1:], phrase[:1].lower() + phrase[1:], phrase.lower()}
    return forms | {f + "." for f in forms}


# Whole-message text -> "media" | "system" | "you-deleted": one dict lookup per message.
_EXACT: dict[str, str] = {}
for _phrase in _ANDROID_MEDIA + tuple(f"{noun} {verb}" for nouns, verbs in _IOS_MEDIA.items()
                                      for noun in nouns for verb in verbs):
    _EXACT.update(dict.fromkeys(_spellings(_phrase), "media"))
for _phrase in _DELETED:
    _EXACT.update(dict.fromkeys(_spellings(_phrase), "system"))
for _phrase in _YOU_DELETED:
    _EXACT.update(dict.fromkeys(_spellings(_phrase), "you-deleted"))
del _phrase
_EXACT_MAX = max(map(len, _EXACT))
# iOS attachment lines: <attached: 00000012-PHOTO-2024-03-01-10-00-00.jpg>
_ATTACHED_RE = re.compile(
    r"<(?:attached|anexado|adjunto|angeh[äa]ngt|pi[èe]ce jointe|allegato|bijgevoegd|прикреплено)\s?:\s?[^<>]+>\s*",
    re.IGNORECASE)
# Android "IMG-20240301-WA0001.jpg (file attached)", possibly with a caption on the next lines.
_FILE_ATTACHED_RE = re.compile(
    r"[^\n]+\s\((?:file attached|Datei angeh[äa]ngt|archivo adjunto|fichier joint|arquivo anexado"
    r"|file allegato)\)\s*", re.IGNORECASE)
_EDITED_RE = re.compile(
    r"\s*<(?:This message was edited|Se editó este mensaje\.?|Diese Nachricht wurde bearbeitet"
    r"|Ce message a été modifié|Questo messaggio è stato modificato|Mensagem editada"
    r"|Dit bericht is bewerkt|Сообщение изменено)>\s*$", re.IGNORECASE)
# A "Name:" part that is really a sentence: "Alex changed the subject to "Trip: Rome"".
_NOT_A_NAME_RE = re.compile(
    r"[\"“”]| (?:changed|added|removed|created|left|joined|pinned|deleted|turned|set|started|updated|reset) ")
# System lines that only happen in groups.
_GROUP_HINT_RE = re.compile(
    r"\bgroup\b|\b(?:added|removed|left|subject)\b|Gruppe|grupo|groupe|gruppo|groep|групп|קבוצה|nhóm", re.IGNORECASE)
# File names the phone gives an export: "WhatsApp Chat with Alex", "WhatsApp Chat - Alex", ...
_TITLE_RE = re.compile(
    r"^(?:WhatsApp Chat (?:with|-|–)|WhatsApp-Chat mit|Chat de WhatsApp con|Conversa do WhatsApp com"
    r"|Discussion WhatsApp avec|Chat WhatsApp con|WhatsApp-chat met|Чат WhatsApp с)\s+(.+?)(?:\s*\(\d+\))?$",
    re.IGNORECASE)


def sniff(path: Path, head: str) -> bool:
    """A text file whose first line is a WhatsApp message header, or a .zip holding one."""
    if head.startswith("PK\x03\x04"):
        try:
            return _zip_member(Path(path)) is not None
        except (OSError, zipfile.BadZipFile, RuntimeError):
            return False
    return _looks_like_chat(head)


def _looks_like_chat(head: str) -> bool:
    for line in head.splitlines()[:5]:
        line = line.lstrip(_MARKS + " ")
        if line:
            return _HEADER_RE.match(line) is not None
    return False


def _zip_member(path: Path) -> str | None:
    """Name of the chat .txt inside a WhatsApp .zip (``_chat.txt`` on iOS), else None."""
    with zipfile.ZipFile(path) as archive:
        texts = [n for n in archive.namelist() if n.lower().endswith(".txt") and not n.startswith("__MACOSX")]
        texts.sort(key=lambda n: (Path(n).name != "_chat.txt", "whatsapp" not in n.lower(), n))
        for name in texts[:5]:
            with archive.open(name) as member:
                head = member.read(4096).decode("utf-8", errors="replace")
            if _looks_like_chat(head):
                return name
    return None


def _opener(path: Path) -> tuple[Callable[[], ContextManager[TextIO]], list[str]]:
    """A function opening the chat text afresh (it is read twice), and names that may carry the title."""
    if zipfile.is_zipfile(path):
        member = _zip_member(path)
        if member is None:
            raise ChatExportError(f"{path}: a .zip without a WhatsApp chat .txt inside")

        @contextmanager
        def open_member() -> Iterator[TextIO]:
            with zipfile.ZipFile(path) as archive, archive.open(member) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None)
        return open_member, [Path(member).stem, path.stem]
    return (lambda: open(path, encoding="utf-8-sig", newline=None)), [path.stem]


@dataclass
class _Scan:
    """What the first pass learns: date order, participants, hints about the chat."""

    headers: int = 0
    max_first: int = 0
    max_second: int = 0
    year_first: int = 0
    back_dayfirst: int = 0
    back_monthfirst: int = 0
    senders: dict[str, bool] = field(default_factory=dict)  # name -> wrote a real message
    deleted_by: set[str] = field(default_factory=set)
    group_hint: bool = False

    @property
    def participants(self) -> list[str]:
        return [name for name, real in self.senders.items() if real]

    @property
    def pseudo_senders(self) -> list[str]:
        return [name for name, real in self.senders.items() if not real]

    @property
    def dayfirst(self) -> bool:
        if self.max_first > 12:
            return True
        if self.max_second > 12:
            return False
        return self.back_dayfirst <= self.back_monthfirst


def _classify(text: str) -> str | None:
    """"media" (placeholder), "system" (deleted marker), "you-deleted" (my deleted marker) or None."""
    kind = _EXACT.get(text)
    if kind is not None:
        return kind
    last = text[-1:]
    if last == ">" and text[:1] == "<" and _ATTACHED_RE.fullmatch(text):
        return "media"
    if last == ")" and _FILE_ATTACHED_RE.fullmatch(text):
        return "media"
    if last == " " or last == "\n":
        return _classify(text.rstrip()) if text.rstrip() != text else None
    return None


def _date_fields(text: str) -> list[str]:
    """["13", "02", "2024"] from "13/02/2024" (any of the separators ./-)."""
    for sep in _SEPARATORS:
        if sep in text:
            return text.split(sep)
    raise ValueError(text)


def _time_of(text: str) -> tuple[int, int, int] | None:
    """(hour, minute, second) of a header's time, 12-hour clocks converted; None when impossible."""
    found = _TIME_RE.match(text)
    hour, minute, second = int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
    half = found.group(4)
    if half is not None:
        if hour > 12 or hour == 0:
            return None
        if half in "pP":
            if hour < 12:
                hour += 12
        elif hour == 12:
            hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _name_or_none(candidate: str) -> str | None:
    """The sender name in a "Name: text" prefix, or None when the prefix is really a sentence."""
    if _NOT_A_NAME_RE.search(candidate):
        return None
    name = candidate.strip(_MARKS)
    return name or None


def _split_sender(rest: str, cache: dict[str, str | None]) -> tuple[str | None, str]:
    """("Alex", "text") from "Alex: text"; (None, rest) for a system line. ``cache`` remembers names."""
    cut = rest.find(": ")
    if cut < 0:
        if rest.endswith(":") and 0 < len(rest) <= 81:
            cut = len(rest) - 1
        else:
            return None, rest
    if cut == 0 or cut > 80:
        return None, rest
    candidate = rest[:cut]
    try:
        name = cache[candidate]
    except KeyError:
        name = _name_or_none(candidate)
        if len(cache) < 50_000:
            cache[candidate] = name
    if name is None:
        return None, rest
    return name, rest[cut + 2:]


def _scan(handle: TextIO) -> _Scan:
    """First pass: only the headers are looked at (date fields, sender, a few markers)."""
    scan = _Scan()
    senders = scan.senders
    names: dict[str, str | None] = {}
    match = _HEADER_RE.match
    previous_date = None
    last_dm = last_md = (0, 0, 0)
    headers = 0
    for line in handle:
        if line[:1] in _MARK_START:
            line = line.lstrip(_MARKS)
        found = match(line)
        if found is None:
            continue
        headers += 1
        stamp = found.group(1)
        if stamp != previous_date:
            previous_date = stamp
            fields = _date_fields(stamp)
            first, second, year = int(fields[0]), int(fields[1]), int(fields[2])
            if len(fields[0]) == 4:
                scan.year_first += 1
            else:
                if first > scan.max_first:
                    scan.max_first = first
                if second > scan.max_second:
                    scan.max_second = second
                key_dm, key_md = (year, second, first), (year, first, second)
                if key_dm < last_dm:
                    scan.back_dayfirst += 1
                if key_md < last_md:
                    scan.back_monthfirst += 1
                last_dm, last_md = key_dm, key_md
        end = found.end()
        cut = line.find(": ", end, end + 82)
        if cut > end:
            known = names.get(line[end:cut], "")
            if senders.get(known):  # the common case: a known participant's message
                if len(line) - cut <= _EXACT_MAX + 6 and \
                        _EXACT.get(line[cut + 2:].strip(_MARKS + "\n")) == "you-deleted":
                    scan.deleted_by.add(known)
                continue
        sender, text = _split_sender(line[end:].rstrip("\n"), names)
        if sender is None:
            if not scan.group_hint and _GROUP_HINT_RE.search(text):
                scan.group_hint = True
            continue
        real = senders.get(sender)
        kind = _classify(text.lstrip(_MARKS))
        if kind == "you-deleted":
            scan.deleted_by.add(sender)
        if not real:
            senders[sender] = not (text[:1] == "\u200e" and kind != "media")
    scan.headers = headers
    return scan


def _title(names: list[str]) -> str | None:
    for name in names:
        found = _TITLE_RE.match(name.strip())
        if found:  # NFC: macOS hands out file names decomposed (NFD)
            return unicodedata.normalize("NFC", found.group(1).strip(_MARKS + " "))
    return None


def _resolve_me(path: Path, me: str | None, scan: _Scan, title: str | None, is_group: bool) -> str | None:
    participants = scan.participants
    if me:
        for name in participants:
            if same_name(name, me):
                return name
    deleters = [n for n in scan.deleted_by if n in participants]
    if len(deleters) == 1:
        return deleters[0]
    if not is_group and title is not None:
        others = [n for n in participants if not same_name(n, title)]
        if len(others) < len(participants):  # the contact named in the file name is here
            if len(others) == 1:
                return others[0]
            if not others:
                return None  # only the contact wrote: none of the messages is mine
    if not participants:
        return None
    raise unknown_me(path, "a WhatsApp export does not say which participant is you", participants, me)


def read(path: Path, me: str | None = None, skipped: list | None = None) -> Iterator[Message]:
    """Yield the messages of one WhatsApp export (.txt or .zip), oldest first as the file stores them."""
    path = Path(path)
    open_text, names = _opener(path)
    with open_text() as handle:
        scan = _scan(handle)
    if scan.headers == 0:
        raise ChatExportError(f"{path}: no WhatsApp message lines found (expected '[date, time] Name: text' "
                          "or 'date, time - Name: text')")
    title = _title(names)
    participants = scan.participants
    pseudo = scan.pseudo_senders
    is_group = len(participants) > 2 or bool(pseudo) or scan.group_hint
    owner = _resolve_me(path, me, scan, title, is_group)
    if title:
        chat = title
    elif is_group:
        chat = pseudo[0] if len(pseudo) == 1 else names[-1]
    else:
        others = [n for n in participants if n != owner]
        chat = others[0] if len(others) == 1 else names[-1]
    with open_text() as handle:
        yield from _parse(handle, path, scan, set(participants), owner, chat, is_group, skipped)


def _parse(handle: TextIO, path: Path, scan: _Scan, participants: set[str], owner: str | None,
           chat: str, is_group: bool, skipped: list | None) -> Iterator[Message]:
    source = str(path)
    dayfirst = scan.dayfirst
    days: dict[str, tuple[int, int, int] | None] = {}
    times: dict[str, tuple[int, int, int] | None] = {}
    names: dict[str, str | None] = {}
    match = _HEADER_RE.match

    def day_of(text: str) -> tuple[int, int, int] | None:
        first, second, third = _date_fields(text)
        if len(first) == 4:
            year, month, day = int(first), int(second), int(third)
        else:
            year = int(third)
            if year < 100:
                year += 2000
            month, day = (int(second), int(first)) if dayfirst else (int(first), int(second))
        try:
            date(year, month, day)
        except ValueError:
            return None
        return year, month, day

    def build(stamp: datetime, sender: str | None, text: str, extra: list[str] | None) -> Message:
        if extra is not None:
            text = text + "\n" + "\n".join(extra) if text else "\n".join(extra)
        notice = False
        if "\u200e" in text or "\u200f" in text:
            notice = text[:1] == "\u200e"
            text = text.replace("\u200e", "").replace("\u200f", "")
        if sender is None:
            return Message(sender="", text=text.strip(), timestamp=stamp, chat=chat, from_me=False,
                           kind="system", is_group=is_group, source=source)
        kind = "text"
        if sender not in participants:
            kind = "system"  # an iOS notice filed under the group's name
        else:
            if text[-1:] == ">" and _EDITED_RE.search(text):
                text = _EDITED_RE.sub("", text)
            head = None
            if extra is not None:
                head, _, caption = text.partition("\n")
            if head is not None and head[-1:] == ")" and _FILE_ATTACHED_RE.fullmatch(head):
                caption = caption.strip()  # the caption under an attachment
                kind, text = ("text", caption) if caption else ("media", text)
            else:
                special = None
                if extra is None:
                    special = _EXACT.get(text)
                    if special is None and text[-1:] in ">) ":
                        special = _classify(text)
                if special is not None:
                    kind = "media" if special == "media" else "system"
                elif notice:
                    kind = "system"
        # positional: measurably faster than keywords on millions of lines (order checked at import)
        return Message(sender, text, stamp, chat, sender == owner, kind, is_group, source)

    # The message being read: its time, sender, first line and continuation lines.
    stamp: datetime | None = None
    sender: str | None = None
    first = ""
    extra: list[str] | None = None
    dropping = False  # inside a malformed message: its continuation lines go with it
    for lineno, line in enumerate(handle, 1):
        if line[:1] in _MARK_START:
            stripped = line.lstrip(_MARKS)
        else:
            stripped = line
        found = match(stripped)
        if found is None:
            if stamp is not None:
                if extra is None:
                    extra = [line.rstrip("\n")]
                else:
                    extra.append(line.rstrip("\n"))
            elif not dropping and line.strip(_MARKS + " \n"):
                note_skip(skipped, path, lineno, "text before the first message header")
                dropping = True
            continue
        if stamp is not None:
            yield build(stamp, sender, first, extra)
            stamp = None
        day_text, time_text = found.groups()
        try:
            day = days[day_text]
        except KeyError:
            day = days[day_text] = day_of(day_text)
        try:
            clock = times[time_text]
        except KeyError:
            clock = times[time_text] = _time_of(time_text)
        if day is None or clock is None:
            note_skip(skipped, path, lineno, f"impossible date or time {stripped[:found.end()].strip()!r}")
            dropping = True
            continue
        dropping = False
        stamp = datetime(day[0], day[1], day[2], clock[0], clock[1], clock[2])
        rest = stripped[found.end():]
        if rest[-1:] == "\n":
            rest = rest[:-1]
        cut = rest.find(": ")
        sender = names.get(rest[:cut]) if 0 < cut <= 80 else None
        if sender is not None:  # a name seen before (the common case)
            first = rest[cut + 2:]
        else:
            sender, first = _split_sender(rest, names)
        extra = None
    if stamp is not None:
        yield build(stamp, sender, first, extra)

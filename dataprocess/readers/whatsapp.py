"""Reader for WhatsApp chat exports: the ``.txt`` file and the ``.zip`` the phone shares.

Every layout WhatsApp has written is read (``whatsapp_layout`` lists them: iOS ``[date, time]
Name:``, Android ``date, time - Name:``, the 2012-2016 ``date time: Name:``, dotted times,
Finnish ``klo``, Hungarian/Croatian ``13. 6. 2018.``, year-first, 12- or 24-hour clocks with an
ordinary, no-break or narrow no-break space before ``PM``), as UTF-8 or UTF-16 with a BOM, with
``\n``, ``\r\n`` or ``\r\r\n`` line ends. The file is read twice, line by line in bounded chunks
(a ``.zip`` is read in place, never extracted; zip bombs are refused): a first pass over the
headers decides the file's layouts and each layout's day/month order from the whole file and
collects the participants; the second yields the messages. Timestamps are the phone's
wall-clock time, kept naive as written.

Messages: a line that does not start with a header in one of the file's layouts continues the
message before it (multi-line messages keep their line breaks). U+200E/U+200F marks are stripped
from names and text. A header line with no ``Name:`` part (group created, X added Y, security
code changed, the end-to-end encryption notice, ...) is a ``system`` message; so is an iOS
notice filed under the group's own name or starting with U+200E (``‎Missed voice call``). Media
placeholders (``<Media omitted>``, ``image omitted``, ``<attached: 00000012-PHOTO-….jpg>``,
``sticker omitted``, ``… (file attached)`` and their German, Spanish, French, Italian,
Portuguese, Dutch and Russian forms) are ``media``; ``This message was deleted`` / ``You deleted
this message`` (and translations) are ``system``; a trailing ``<This message was edited>`` is
removed. What a sender shares in WhatsApp's own words is the sender's message of kind ``media``
(it holds no words of theirs for the twin to learn, like a photo), even where iOS marks it with
U+200E as it marks notices: a location (``Location: https://maps.google.com/?q=…``), a live
location (``live location shared``), a contact card (``Name.vcf (file attached)``, ``<attached:
….vcf>``, ``Contact card omitted``) and a poll (``POLL:`` with its question and ``OPTION:`` lines,
kept as the message's text). A header with an impossible date (``31/02/2024``) is skipped with its
continuation lines and recorded as malformed; so is text before the first header, and a message
over 64 K characters. A byte that is not UTF-8 is one broken character (U+FFFD, the message kept,
the line named in a note), not a broken file; a file with no header at all and such bytes is
refused as "not UTF-8 text".

**Day or month first** is decided per layout from the whole file (``whatsapp_layout.choose_order``:
a field above 12, else the order under which the dates run forward, else the clock, the date's
padding and the language of the placeholders and system lines); ``--day-first``/``--month-first``
force it. Where the file left it open, the reader's note (in the summary and ``report.json``) says
which order was chosen and why.

**Who is me.** The export does not say. ``me`` (``--me``) names the owner when it matches a
participant (see ``base.same_person``); otherwise the owner is inferred only when unambiguous:
the one sender of ``You deleted this message`` lines, or, in a one-on-one chat whose file is
named after the contact (``WhatsApp Chat with Alex.txt``, ``WhatsApp Chat - Alex.zip``), the
other participant. Failing that, no message is mine (``from_me`` False), and ``twin process``
asks for ``--me`` with the list of participants.

**Chat and group.** The chat is the name in the file name when there is one, else the other
participant (one-on-one) or the file's name (group). A chat is a group when it has more than two
participants, when iOS files notices under the group's name, or when a system line speaks of
a group (created group, added, removed, left, ...). ``sender`` is the name as the export writes it.
"""
from __future__ import annotations

import re
import unicodedata
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Iterator

from ..errors import ChatExportError
from ..message import Message
from .base import (MAX_MESSAGE_CHARS, NOBODY, Chat, Reader, decode_head, path_text, safe_text, same_person, text_lines,
                   zip_member_guard)
from .whatsapp_layout import (FITS, HEADER_RE, REJECT, SUSPECT, SYSTEM_LANGUAGE_RE, Layout, LayoutScan, choose_order,
                              date_fields, date_pad, hour_pad, layout_key, order_note, time_of)

if list(Message._fields)[:8] != ["sender", "text", "timestamp", "chat", "from_me", "kind",
                                             "is_group", "source"]:  # pragma: no cover
    raise ImportError("whatsapp reader: Message fields changed order; update the positional construction")

_MARKS = "\ufeff\u200e\u200f"
_MARK_START = frozenset(_MARKS)

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
# The language each marker is written in (the date order's evidence, see whatsapp_layout.choose_order).
_LANGS = ("en", "de", "es", "fr", "fr", "it", "pt", "pt", "nl", "ru")  # of _ANDROID_MEDIA, in order
_IOS_LANGS = ("en", "es", "de", "fr", "it", "pt", "ru")  # of _IOS_MEDIA's rows, in order
_MARKER_LANGS = ("en", "es", "de", "fr", "it", "pt", "nl", "ru")  # of _YOU_DELETED and _DELETED
_PHRASE_LANG: dict[str, str] = {}
for _phrase, _lang in [*zip(_ANDROID_MEDIA, _LANGS), *zip(_YOU_DELETED, _MARKER_LANGS), *zip(_DELETED, _MARKER_LANGS),
                       *((f"{noun} {verb}", lang) for (nouns, verbs), lang in zip(_IOS_MEDIA.items(), _IOS_LANGS)
                         for noun in nouns for verb in verbs)]:
    for _spelling in _spellings(_phrase):
        _PHRASE_LANG.setdefault(_spelling, _lang)
#: Whole-message text -> (kind, language): what the first pass looks up on short lines.
_SAID: dict[str, tuple[str, str]] = {text: (kind, _PHRASE_LANG.get(text, "en")) for text, kind in _EXACT.items()}
del _phrase, _lang, _spelling
# iOS attachment lines: <attached: 00000012-PHOTO-2024-03-01-10-00-00.jpg>
_ATTACHED_RE = re.compile(
    r"<(?:attached|anexado|adjunto|angeh[äa]ngt|pi[èe]ce jointe|allegato|bijgevoegd|прикреплено)\s?:\s?[^<>]+>\s*",
    re.IGNORECASE)
# Android "IMG-20240301-WA0001.jpg (file attached)", possibly with a caption on the next lines.
_FILE_ATTACHED_RE = re.compile(
    r"[^\n]+\s\((?:file attached|Datei angeh[äa]ngt|archivo adjunto|fichier joint|arquivo anexado"
    r"|file allegato)\)\s*", re.IGNORECASE)
# What a sender shares that WhatsApp writes in its own words (iOS puts U+200E before them, as before
# its notices): a location pin, a live location, a poll (its question and OPTION lines follow). These
# are the sender's messages, kind "media" (no words of theirs to learn from; see the module docstring).
_SHARED_RE = re.compile(
    r"(?:Location|location|Standort|Ubicación|ubicación|Posizione|posizione|Localização|localização|Locatie|locatie"
    r"|Localisation|localisation|Геопозиция|Местоположение)\s?: ?https?://\S+\s*$"
    r"|(?:Live location shared|live location shared|Live location ended|Live-Standort geteilt"
    r"|Ubicación en tiempo real compartida|Posizione in tempo reale condivisa)\.?\s*$"
    r"|(?:POLL|UMFRAGE|ENCUESTA|SONDAGGIO|SONDAGE|ENQUETE|ОПРОС)\s?:\s*(?:\n|$)")
_SHARED_FIRST = frozenset("LlSUPpEeGМОС")
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


def _looks_like_chat(head: str) -> bool:
    for line in head.splitlines()[:5]:
        line = line.lstrip(_MARKS + " ")
        if line:
            return HEADER_RE.match(line) is not None
    return False


def _zip_member(path: Path) -> zipfile.ZipInfo | None:
    """The chat .txt inside a WhatsApp .zip (``_chat.txt`` on iOS), else None."""
    with zipfile.ZipFile(path) as archive:
        texts = [i for i in archive.infolist()
                 if i.filename.lower().endswith(".txt") and not i.filename.startswith("__MACOSX")
                 and not Path(i.filename).name.startswith("._")]  # macOS's AppleDouble copies
        texts.sort(key=lambda i: (Path(i.filename).name != "_chat.txt", "whatsapp" not in i.filename.lower(),
                                  i.filename))
        for info in texts[:5]:
            with archive.open(info) as member:
                head = decode_head(member.read(4096))
            if _looks_like_chat(head):
                return info
    return None


def _opener(path: Path) -> tuple[Callable[[], ContextManager[BinaryIO]], list[str]]:
    """A function opening the chat's bytes afresh (it is read twice), and names that may carry the title."""
    if zipfile.is_zipfile(path):
        info = _zip_member(path)
        if info is None:
            raise ChatExportError(f"{path}: a .zip without a WhatsApp chat .txt inside")
        zip_member_guard(path, info)

        @contextmanager
        def open_member() -> Iterator[BinaryIO]:
            with zipfile.ZipFile(path) as archive, archive.open(info) as raw:
                yield raw
        return open_member, [safe_text(Path(info.filename).stem), path_text(path.stem)]
    return (lambda: open(path, "rb")), [path_text(path.stem)]


@dataclass
class _Scan:
    """What the first pass learns: layouts and date order, participants, hints about the chat."""

    headers: int = 0
    layouts: LayoutScan = field(default_factory=LayoutScan)
    senders: dict[str, list] = field(default_factory=dict)  # name -> [wrote a real message, layout keys]
    deleted_by: set[str] = field(default_factory=set)
    group_hint: bool = False
    languages: dict[str, int] = field(default_factory=dict)  # language -> markers and system lines in it

    def _accepted(self, keys: set) -> bool:
        return any(self.layouts.layouts[key].accepted for key in keys)

    @property
    def participants(self) -> list[str]:
        return [name for name, (real, keys) in self.senders.items() if real and self._accepted(keys)]

    @property
    def pseudo_senders(self) -> list[str]:
        return [name for name, (real, keys) in self.senders.items() if not real and self._accepted(keys)]


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


# A header with every digit but 0 made 9: its layout and padding, in one cheap string (a cache key).
_SHAPE = str.maketrans("123456789", "999999999")


def _shape_of(found: re.Match) -> tuple[str, str, str]:
    """(layout key, date padding, hour padding) of a header (computed once per distinct shape)."""
    return layout_key(found.group(0)), date_pad(found.group(1)), hour_pad(found.group(2))


def _scan(lines: Iterator[str]) -> _Scan:
    """First pass: only the headers are looked at (layout, date fields, sender, a few markers)."""
    scan = _Scan()
    senders = scan.senders
    layouts = scan.layouts.layouts
    shapes: dict[str, list] = {}  # shape -> [layout key, date padding, hour padding, lines]
    names: dict[str, str | None] = {}
    match = HEADER_RE.match
    previous = previous_key = None
    languages = scan.languages
    system_lines = 0
    for line in lines:
        if line[:1] in _MARK_START:
            line = line.lstrip(_MARKS)
        found = match(line)
        if found is None:
            continue
        end = found.end()
        shape = line[:end].translate(_SHAPE)
        info = shapes.get(shape)
        if info is None:
            info = shapes[shape] = [*_shape_of(found), 0]
            if info[0] not in layouts:
                layouts[info[0]] = Layout()
        info[3] += 1
        key = info[0]
        stamp = found.group(1)
        if stamp != previous or key != previous_key:  # each layout sees every change of its dates
            previous, previous_key = stamp, key
            layouts[key].add_date(stamp)
        cut = line.find(": ", end, end + 82)
        if cut > end:
            entry = senders.get(names.get(line[end:cut], ""))
            if entry is not None and entry[0] and key in entry[1]:  # a known participant (the common case)
                if len(line) - cut <= _EXACT_MAX + 6:
                    said = _SAID.get(line[cut + 2:].strip(_MARKS))
                    if said is not None:
                        if said[0] == "you-deleted":
                            scan.deleted_by.add(names[line[end:cut]])
                        languages[said[1]] = languages.get(said[1], 0) + 1
                continue
        sender, text = _split_sender(line[end:], names)
        if sender is None:
            if not scan.group_hint and _GROUP_HINT_RE.search(text):
                scan.group_hint = True
            if system_lines < 200:  # the language of the first system lines (enough to tell it)
                system_lines += 1
                for lang, pattern in SYSTEM_LANGUAGE_RE.items():
                    if pattern.search(text):
                        languages[lang] = languages.get(lang, 0) + 1
                        break
            continue
        bare = text.lstrip(_MARKS)
        kind = _classify(bare)
        if kind is None and bare[:1] in _SHARED_FIRST and _SHARED_RE.match(bare):
            kind = "media"  # a location or poll of the sender's (iOS marks it like a notice)
        if kind == "you-deleted":
            scan.deleted_by.add(sender)
        said = _SAID.get(bare.rstrip())
        if said is not None:
            languages[said[1]] = languages.get(said[1], 0) + 1
        entry = senders.setdefault(sender, [False, set()])
        entry[1].add(key)
        if not entry[0]:
            entry[0] = not (text[:1] == "\u200e" and kind != "media")
    for key, dpad, hpad, count in shapes.values():
        layout = layouts[key]
        layout.count += count
        layout.date_pads[dpad] += count
        layout.hour_pads[hpad] += count
    scan.headers = sum(info[3] for info in shapes.values())
    scan.layouts.decide()
    return scan


def _title(names: list[str]) -> str | None:
    for name in names:
        found = _TITLE_RE.match(name.strip())
        if found:  # NFC: macOS hands out file names decomposed (NFD)
            return unicodedata.normalize("NFC", found.group(1).strip(_MARKS + " "))
    return None


@dataclass
class _File:
    """One export being read: how to open it, what the first pass learned, what the chat is."""

    open_bytes: Callable[[], ContextManager[BinaryIO]]
    scan: _Scan
    names: list[str]
    title: str | None
    participants: frozenset[str]
    source: str


class WhatsAppReader(Reader):
    name = "whatsapp"

    def sniff(self, path: Path, head: str) -> bool:
        """A text file whose first line is a WhatsApp message header, or a .zip holding one."""
        if head.startswith("PK\x03\x04"):
            try:
                return _zip_member(Path(path)) is not None
            except (OSError, zipfile.BadZipFile, RuntimeError, UnicodeDecodeError):
                return False
        return _looks_like_chat(head)

    def chats(self, path: Path) -> Iterator[Chat]:
        open_bytes, names = _opener(path)
        with open_bytes() as raw:
            lines = text_lines(raw, path_text(path))
            scan = _scan(lines)
        if scan.headers == 0 and lines.bad_bytes:
            raise ChatExportError(f"{path}: not UTF-8 text, so not a whatsapp export")
        if scan.headers == 0:
            raise ChatExportError(f"{path}: no WhatsApp message lines found (expected '[date, time] Name: text' "
                                  "or 'date, time - Name: text')")
        participants = scan.participants
        is_group = len(participants) > 2 or bool(scan.pseudo_senders) or scan.group_hint
        chat = Chat(title="", is_group=is_group, people={name: {name} for name in participants})
        chat.data = _File(open_bytes, scan, names, _title(names), frozenset(participants), path_text(path))
        yield chat

    def owner(self, path: Path, chat: Chat, me_ids: frozenset[str]) -> frozenset[str] | None:
        """``--me``; else the one sender of "You deleted this message"; else, in a one-on-one chat
        whose file is named after the contact, the other participant."""
        if me_ids:
            return me_ids
        file: _File = chat.data
        deleters = [n for n in file.scan.deleted_by if n in file.participants]
        if len(deleters) == 1:
            return frozenset(deleters)
        if not chat.is_group and file.title is not None:
            others = [n for n in file.participants if not same_person(n, file.title)]
            if len(others) < len(file.participants):  # the contact named in the file name is here
                if len(others) == 1:
                    return frozenset(others)
                if not others:
                    return NOBODY  # only the contact wrote: none of the messages is mine
        return None

    def owner_problem(self, chat: Chat) -> str:
        return "a WhatsApp export does not say which participant is you"

    def records(self, path: Path, chat: Chat) -> Iterator[tuple[int, tuple]]:
        file: _File = chat.data
        pseudo = file.scan.pseudo_senders
        if file.title:
            chat.title = file.title
        elif chat.is_group:
            chat.title = pseudo[0] if len(pseudo) == 1 else file.names[-1]
        else:
            others = [n for n in file.participants if n not in chat.mine]
            chat.title = others[0] if len(others) == 1 else file.names[-1]
        orders = {}
        main = file.scan.layouts.main()
        for key, layout in file.scan.layouts.layouts.items():
            if not layout.accepted:
                orders[key] = choose_order(layout, key, file.scan.languages)[0]
                continue
            orders[key], why = choose_order(layout, key, file.scan.languages, chat.dayfirst)
            if why is not None and (layout is main or chat.dayfirst is None):
                chat.notes.append(order_note(file.source, layout, orders[key], why))
        with file.open_bytes() as raw:
            yield from _parse(text_lines(raw, path_text(path), chat.notes), file.scan, orders)

    def message(self, record: tuple, chat: Chat, mine: frozenset[str]) -> Message:
        stamp, sender, text, extra = record
        if stamp is None:
            raise ValueError(sender)  # a malformed record carries its reason there
        if extra is not None:
            text = text + "\n" + "\n".join(extra) if text else "\n".join(extra)
        notice = False
        if "\u200e" in text or "\u200f" in text:
            notice = text[:1] == "\u200e"
            text = text.replace("\u200e", "").replace("\u200f", "")
        file: _File = chat.data
        if sender is None:
            return Message("", text.strip(), stamp, chat.title, False, "system", chat.is_group, file.source)
        kind = "text"
        if sender not in file.participants:
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
                if special is None and text[:1] in _SHARED_FIRST and _SHARED_RE.match(text):
                    special = "media"  # a location, live location or poll: the sender's
                if special is not None:
                    kind = "media" if special == "media" else "system"
                elif notice:
                    kind = "system"
        # positional: measurably faster than keywords on millions of lines (order checked at import)
        return Message(sender, text, stamp, chat.title, sender in mine, kind, chat.is_group, file.source)


def _day_reader(dayfirst: bool) -> Callable[[str], tuple[int, int, int] | None]:
    def day_of(text: str) -> tuple[int, int, int] | None:
        first, second, third = date_fields(text)
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
    return day_of


def _parse(lines: Iterator[str], scan: _Scan, orders: dict[str, bool]) -> Iterator[tuple[int, tuple]]:
    """Second pass: ``(line number, (time, sender, first line, continuation lines))`` per message;
    ``(line number, (None, reason, None, None))`` for a malformed one. ``orders``: layout key ->
    day-first or not (see :func:`~.whatsapp_layout.choose_order`)."""
    layouts = scan.layouts
    main = layouts.main()
    single = layouts.single
    readers = {key: (layout, {}, _day_reader(orders[key])) for key, layout in layouts.layouts.items()}
    shapes: dict[str, tuple[str, str, str]] = {}
    main_days: dict[str, tuple[int, int, int] | None] = {}
    main_day_of = readers[next(k for k, v in layouts.layouts.items() if v is main)][2]
    times: dict[str, tuple[int, int, int] | None] = {}
    names: dict[str, str | None] = {}
    match = HEADER_RE.match

    # The message being read: its time, sender, first line and continuation lines.
    stamp: datetime | None = None
    start = 0
    sender: str | None = None
    first = ""
    extra: list[str] | None = None
    size = 0
    dropping = False  # inside a malformed message: its continuation lines go with it
    for lineno, line in enumerate(lines, 1):
        if line[:1] in _MARK_START:
            stripped = line.lstrip(_MARKS)
        else:
            stripped = line
        found = match(stripped)
        days, day_of = main_days, main_day_of
        if found is not None and not single:
            shape = stripped[:found.end()].translate(_SHAPE)
            if shape not in shapes:
                shapes[shape] = _shape_of(found)
            key, dpad, hpad = shapes[shape]
            layout, days, day_of = readers[key]
            verdict = layout.judge(dpad, hpad) if layout.accepted else REJECT
            if verdict == FITS and layout is not main:
                verdict = SUSPECT
            if verdict == REJECT:
                found = None  # a header in a layout that is not this file's: part of the message
            elif verdict == SUSPECT and stamp is not None:
                day, clock = day_of(found.group(1)), time_of(found.group(2, 3, 4, 5))
                if day is None or clock is None or datetime(*day, *clock) < stamp:
                    found = None  # going back in time: a quoted header
        if found is None:
            if stamp is not None:
                if size <= MAX_MESSAGE_CHARS:
                    size += len(line) + 1
                    if extra is None:
                        extra = [line]
                    else:
                        extra.append(line)
            elif not dropping and line.strip(_MARKS + " "):
                yield lineno, (None, "text before the first message header", None, None)
                dropping = True
            continue
        if stamp is not None:
            if size > MAX_MESSAGE_CHARS:
                yield start, (None, f"a message over {MAX_MESSAGE_CHARS:,} characters", None, None)
            else:
                yield start, (stamp, sender, first, extra)
            stamp = None
        fields = found.group(1, 2, 3, 4, 5)
        day_text = fields[0]
        try:
            day = days[day_text]
        except KeyError:
            day = days[day_text] = day_of(day_text)
        time_text = fields[1:]
        try:
            clock = times[time_text]
        except KeyError:
            clock = times[time_text] = time_of(time_text)
        if day is None or clock is None:
            yield lineno, (None, f"impossible date or time {stripped[:found.end()].strip()!r}", None, None)
            dropping = True
            continue
        dropping = False
        stamp = datetime(day[0], day[1], day[2], clock[0], clock[1], clock[2])
        start = lineno
        rest = stripped[found.end():]
        cut = rest.find(": ")
        sender = names.get(rest[:cut]) if 0 < cut <= 80 else None
        if sender is not None:  # a name seen before (the common case)
            first = rest[cut + 2:]
        else:
            sender, first = _split_sender(rest, names)
        extra = None
        size = len(first)
    if stamp is not None:
        if size > MAX_MESSAGE_CHARS:
            yield start, (None, f"a message over {MAX_MESSAGE_CHARS:,} characters", None, None)
        else:
            yield start, (stamp, sender, first, extra)


READER = WhatsAppReader()
sniff = READER.sniff
read = READER.read

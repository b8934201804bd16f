"""Telegram Desktop's HTML export (its default format): ``messages.html``, ``messages2.html``, ...

Read with Beautiful Soup over the standard library's ``html.parser`` (no regex scraping). Given
a folder holding ``messages.html``, or the whole-account folder (``chats/chat_*/messages*.html``),
every page is read in order; given one ``messagesN.html``, that page. The pages of one chat are
one conversation. The structure read, per message::

    <div class="page_header">…<div class="text bold">Nadia</div>…</div>     the chat's name
    <div class="message default clearfix[ joined]" id="message123">
      <div class="body">
        <div class="pull_right date details" title="05.05.2024 18:00:00 UTC+02:00">18:00</div>
        <div class="from_name">Nadia</div>         absent on a "joined" message: same sender
        <div class="reply_to details">…</div>      ignored
        <div class="forwarded body">…</div>        someone else's words passed on -> media
        <div class="media_wrap clearfix">…</div>   a photo, sticker, file... -> media unless captioned
        <div class="text">…<br>…</div>             the text (``<br>`` is a line break)
    <div class="message service" id="message-1">   dates between days, joins, calls -> system

Times are the ``title`` of the date: converted to naive local time when it carries ``UTC+hh:mm``,
kept as written otherwise. The page does not give sender ids: senders are known by name. In a
chat with two senders, the one who is not the chat's name (the contact) is me; otherwise ``--me``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import ChatExportError
from ..message import Message

_PAGE_RE = re.compile(r"messages(\d*)\.html$")
_DATE_RE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})(?: UTC([+-])(\d{2}):(\d{2}))?$")
_DAY_HEADING_RE = re.compile(r"\d{1,2} \w+ \d{4}")  # "5 May 2024" between the days of a page
_GROUP_HINT_RE = re.compile(r"\b(?:created group|invited|joined group|removed|left the group|converted)\b",
                            re.IGNORECASE)


def looks_like_page(head: str) -> bool:
    """The start of a Telegram Desktop HTML page."""
    return "<title>Exported Data</title>" in head or 'class="page_header"' in head


def page_number(path: Path) -> int | None:
    found = _PAGE_RE.fullmatch(path.name)
    return (int(found.group(1) or 1)) if found else None


def chat_folders(folder: Path) -> list[Path]:
    """The chat folders of an export folder: itself when it holds ``messages.html``, else the
    whole-account export's ``chats/chat_*`` folders that do."""
    if (folder / "messages.html").is_file():
        return [folder]
    chats = folder / "chats"
    if chats.is_dir():
        return sorted(p for p in chats.iterdir() if (p / "messages.html").is_file())
    return []


def pages(folder: Path) -> list[Path]:
    found = [(page_number(p), p) for p in folder.iterdir() if page_number(p) is not None]
    return [p for _, p in sorted(found)]


@dataclass
class Record:
    """One message as the page shows it (before it becomes a :class:`Message`)."""

    page: Path
    index: int
    kind: str  # "default" or "service"
    sender: str
    stamp: str  # the date's title, or a service line's day
    text: str
    media: bool
    forwarded: bool


def _text_of(node) -> str:
    for br in node.find_all("br"):
        br.replace_with("\n")
    lines = [" ".join(line.split()) for line in node.get_text("").split("\n")]
    return "\n".join(line for line in lines if line)


def read_page(path: Path) -> tuple[str | None, list[Record]]:
    """The chat name in a page's header and the page's messages, in order."""
    from bs4 import BeautifulSoup

    with open(path, encoding="utf-8") as handle:
        soup = BeautifulSoup(handle, "html.parser")
    header = soup.select_one("div.page_header div.text.bold")
    name = " ".join(header.get_text(" ").split()) if header else None
    history = soup.select_one("div.history")
    if history is None:
        raise ChatExportError(f"{path}: an HTML page without Telegram's message history")
    records = []
    sender = ""
    for index, node in enumerate(history.find_all("div", class_="message", recursive=False)):
        classes = node.get("class", [])
        body = node.find("div", class_="body", recursive=False)
        if body is None:
            continue
        if "service" in classes:
            if _DAY_HEADING_RE.fullmatch(" ".join(body.get_text(" ").split())):
                continue
            records.append(Record(path, index, "service", "", "", _text_of(body), False, False))
            continue
        who = body.find("div", class_="from_name", recursive=False)
        if who is not None:
            sender = " ".join(who.get_text(" ").split())
        elif "joined" not in classes:
            sender = ""
        date = body.find("div", class_="date", recursive=False)
        text = body.find("div", class_="text", recursive=False)
        forwarded = body.find("div", class_="forwarded", recursive=False)
        if text is None and forwarded is not None:
            text = forwarded.find("div", class_="text")
        media = body.find("div", class_="media_wrap", recursive=False) is not None
        records.append(Record(path, index, "default", sender, (date.get("title") or "") if date else "",
                              _text_of(text) if text is not None else "", media, forwarded is not None))
    return name, records


def local_time(title: str) -> datetime:
    """Naive local time of a date title ``05.05.2024 18:00:00 UTC+02:00`` (no zone: as written)."""
    found = _DATE_RE.match(title.strip())
    if found is None:
        raise ValueError(f"not a Telegram date {title!r}")
    day, month, year, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    moment = datetime(year, month, day, hour, minute, second)
    if found.group(7):
        offset = timedelta(hours=int(found.group(8)), minutes=int(found.group(9)))
        zone = timezone(offset if found.group(7) == "+" else -offset)
        moment = moment.replace(tzinfo=zone).astimezone().replace(tzinfo=None)
    return moment


def is_group(records: list[Record], people: set[str]) -> bool:
    return len(people) > 2 or any(r.kind == "service" and _GROUP_HINT_RE.search(r.text) for r in records)


def message(record: Record, chat: str, group: bool, mine: frozenset[str], source: str,
            last: datetime | None) -> Message | None:
    """A record as a :class:`Message`; a service line takes the time of the message before it
    (the day headings that open a page have none and are left out)."""
    if record.kind == "service":
        if last is None:
            return None
        return Message("", record.text, last, chat, False, "system", group, source)
    if not record.sender:
        raise ValueError("a message without a sender")
    stamp = local_time(record.stamp)
    kind = "media" if record.forwarded or (record.media and not record.text) else "text"
    return Message(record.sender, record.text, stamp, chat, record.sender in mine, kind, group, source)

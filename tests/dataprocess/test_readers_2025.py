"""The exports people have in 2025 (issue 20), each from fixtures written by hand in the
platform's layout (tests/fixtures/<platform>/): WhatsApp's shared locations, contact cards and
polls, the day/month order from the file's evidence; and one bad record never costing the file."""
from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataprocess import ChatExportError, detect_format, read_export
from twin_cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
WA = FIXTURES / "whatsapp"
IOS_CHAT = WA / "shared_ios" / "WhatsApp Chat - Marta.txt"
ANDROID_CHAT = WA / "shared_android" / "WhatsApp Chat with Marta.txt"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _macos_zip(tmp_path: Path) -> Path:
    """The iOS chat as the Mac's "Compress" makes it: a folder, and AppleDouble twins under __MACOSX/."""
    path = tmp_path / "WhatsApp Chat - Marta.zip"
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 64
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__MACOSX/WhatsApp Chat - Marta/._chat.txt", apple_double)
        archive.writestr("WhatsApp Chat - Marta/._chat.txt", apple_double)
        archive.writestr("WhatsApp Chat - Marta/_chat.txt", IOS_CHAT.read_bytes())
        archive.writestr("WhatsApp Chat - Marta/00000007-Bakery Sol.vcf", b"BEGIN:VCARD\r\nEND:VCARD\r\n")
        archive.writestr("__MACOSX/WhatsApp Chat - Marta/._00000007-Bakery Sol.vcf", apple_double)
    return path


@pytest.mark.parametrize("layout", ["ios", "android", "macos-zip"])
def test_locations_contact_cards_and_polls_are_the_senders_messages(tmp_path, layout):
    path = {"ios": IOS_CHAT, "android": ANDROID_CHAT}.get(layout) or _macos_zip(tmp_path)
    assert detect_format(path) == "whatsapp"
    msgs = list(read_export(path))
    assert len(msgs) == 10
    by_sender = Counter(m.sender for m in msgs if m.kind != "system")
    assert by_sender == {"Marta": 3, "Jon": 5}  # Marta wrote 3: a text, a location, a poll
    assert {m.chat for m in msgs} == {"Marta"} and not any(m.is_group for m in msgs)
    shared = [(m.sender, m.kind, m.text.splitlines()[0]) for m in msgs if m.kind == "media"]
    location = "Location" if layout != "android" else "location"
    assert [s[:2] for s in shared] == [("Marta", "media"), ("Jon", "media"), ("Marta", "media"), ("Jon", "media")]
    assert shared[0][2] == f"{location}: https://maps.google.com/?q=41.38506,2.17340"
    assert shared[1][2].endswith(("Bakery Sol.vcf>", "Bakery Sol.vcf (file attached)"))
    assert shared[3][2].lower() == "live location shared"
    poll = next(m for m in msgs if m.text.startswith("POLL:"))
    assert poll.text.split("\n") == ["POLL:", "what time?", "OPTION: 10:00 (1 vote)", "OPTION: 11:00 (0 votes)"]
    assert "\u200e" not in poll.text
    # the file is named after Marta: Jon is me, and his 5 are mine
    assert Counter(m.sender for m in msgs if m.from_me) == {"Jon": 6}


def test_a_sender_who_only_shares_a_location_is_a_participant(tmp_path):
    path = tmp_path / "WhatsApp Chat - Ada.txt"
    path.write_text("[01/02/2025, 10:00:00] Ada: hi\n[01/02/2025, 10:01:00] Ben: \u200eLocation: "
                    "https://maps.google.com/?q=1.5,2.5\n", encoding="utf-8")
    msgs = list(read_export(path))
    assert [(m.sender, m.kind, m.is_group) for m in msgs] == [("Ada", "text", False), ("Ben", "media", False)]
    assert msgs[1].from_me  # the one who is not the file's contact


# ---------------------------------------------------------------- day or month first


def test_italian_2012_chat_without_a_day_above_12_is_day_first_and_says_why():
    path = WA / "WhatsApp Chat with Giulia.txt"
    notes: list[str] = []
    msgs = list(read_export(path, notes=notes))
    assert msgs[0].timestamp.isoformat() == "2012-09-12T21:04:11"  # 12 September, not 9 December
    assert msgs[-1].timestamp.isoformat() == "2012-10-12T08:16:03"
    assert [m.kind for m in msgs].count("media") == 1  # <Media omessi>
    (note,) = notes
    assert "day-first" in note and "12/09/2012 is 12 September 2012" in note
    assert "24-hour clock" in note and "Italian" in note


@pytest.mark.parametrize("flag, expected", [(True, "2012-09-12"), (False, "2012-12-09")])
def test_the_flags_force_the_order(flag, expected):
    notes: list[str] = []
    msgs = list(read_export(WA / "WhatsApp Chat with Giulia.txt", dayfirst=flag, notes=notes))
    assert msgs[0].timestamp.date().isoformat() == expected
    assert notes == [note for note in notes if ("--day-first" if flag else "--month-first") in note] and notes


def test_a_us_chat_with_am_pm_and_m_d_yy_is_month_first(tmp_path):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text("1/2/24, 3:20 PM - Ann: hi\n1/2/24, 3:25 PM - Bo: hey\n", encoding="utf-8")
    notes: list[str] = []
    msgs = list(read_export(path, notes=notes))
    assert msgs[0].timestamp.date().isoformat() == "2024-01-02"
    assert "month-first" in notes[0] and "12-hour clock" in notes[0]


def test_dates_in_order_still_decide_before_the_hints(tmp_path):
    # 24-hour clock and German placeholders, but only month-first keeps time running forward
    path = tmp_path / "WhatsApp-Chat mit Ann.txt"
    path.write_text("1/5/24, 10:00 - Ann: a\n1/9/24, 10:00 - Ann: <Medien ausgeschlossen>\n"
                    "2/3/24, 10:00 - Ann: c\n", encoding="utf-8")
    notes: list[str] = []
    assert [m.timestamp.date().isoformat() for m in read_export(path, notes=notes)] == \
        ["2024-01-05", "2024-01-09", "2024-02-03"]
    assert "month-first" in notes[0] and "back in time 1 time" in notes[0]


def test_a_day_above_12_settles_it_without_a_note(tmp_path):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text("13/02/2024, 10:00 - Ann: a\n", encoding="utf-8")
    notes: list[str] = []
    list(read_export(path, notes=notes))
    assert notes == []


def test_the_summary_says_which_order_and_why(tmp_path):
    result = CliRunner().invoke(main, ["process", str(WA / "WhatsApp Chat with Giulia.txt"), "--workspace",
                                       str(tmp_path / "ws"), "--since", "2010-01-01"])
    assert result.exit_code == 0, result.output
    assert "dates read day-first (12/09/2012 is 12 September 2012)" in result.output
    report = json.loads((tmp_path / "ws" / "data" / "report.json").read_text(encoding="utf-8"))
    assert any("Italian" in note for note in report["notes"])
    forced = CliRunner().invoke(main, ["process", str(WA / "WhatsApp Chat with Giulia.txt"), "--workspace",
                                       str(tmp_path / "ws2"), "--since", "2010-01-01", "--month-first"])
    assert forced.exit_code == 0, forced.output
    assert "dates read month-first (12/09/2012 is 9 December 2012): as --month-first asks" in forced.output

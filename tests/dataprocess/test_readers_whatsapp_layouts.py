"""WhatsApp layouts beyond today's iOS and Android ones, each from a fixture written by hand
for it (tests/fixtures/whatsapp), and the layout decided from the whole file."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from dataprocess import detect_format, read_export

WA = Path(__file__).parents[1] / "fixtures" / "whatsapp"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def rows(path, **kw):
    return [(m.timestamp.strftime("%Y-%m-%d %H:%M:%S"), m.sender, m.text, m.from_me, m.kind)
            for m in read_export(path, **kw)]


def test_2012_ios_layout_with_bom_and_cr_cr_lf():
    path = WA / "WhatsApp Chat with Sam.txt"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\r\n" in path.read_bytes()
    assert detect_format(path) == "whatsapp"
    assert rows(path) == [
        ("2012-07-08 15:20:08", "Sam", "are you coming to the lake?", False, "text"),
        ("2012-07-08 15:21:40", "Noa", "yes! leaving at 4\nbring the blue towel", True, "text"),
        ("2012-07-08 15:22:02", "Sam", "image omitted", False, "media"),
        ("2012-07-13 10:05:00", "Sam", "thanks for saturday", False, "text"),
        ("2012-07-13 10:07:31", "Noa", "anytime", True, "text"),
    ]


def test_2012_day_first_layout_with_seconds_and_a_colon():
    assert rows(WA / "WhatsApp Chat with Tom.txt") == [
        ("2012-12-09 17:02:35", "Tom", "did you see the match", False, "text"),
        ("2012-12-09 17:03:10", "Ana", "no, who won?", True, "text"),
        ("2013-01-08 14:07:41", "Tom", "we did, 3-1", False, "text"),
        ("2013-01-08 14:09:00", "Ana", "🎉 finally", True, "text"),
        ("2013-01-23 09:00:00", "Ana", "coffee later?", True, "text"),
    ]


def test_dotted_time():
    assert rows(WA / "WhatsApp Chat with Lars.txt") == [
        ("2018-06-13 21:25:15", "Lars", "hei, er du hjemme?", False, "text"),
        ("2018-06-13 21:26:02", "Ingrid", "ja, kom bare", True, "text"),
        ("2018-06-14 08:01:44", "Lars", "takk for i går", False, "text"),
    ]


def test_finnish_klo():
    assert rows(WA / "WhatsApp Chat with Ville.txt") == [
        ("2018-06-13 21:25:15", "Ville", "moi! mitä kuuluu?", False, "text"),
        ("2018-06-13 21:27:00", "Aino", "hyvää, entä sulle?", True, "text"),
        ("2018-06-13 21:28:30", "Ville", "ihan ok\nhuomenna sauna?", False, "text"),
    ]


def test_hungarian_croatian_dates_and_no_separator_before_the_name():
    assert rows(WA / "WhatsApp Chat with Bence.txt") == [
        ("2018-06-13 21:25:15", "Bence", "szia, ráérsz holnap?", False, "text"),
        ("2018-06-13 21:26:40", "Réka", "igen, délután", True, "text"),
        ("2018-06-14 09:02:11", "Bence", "szuper, 3-kor?", False, "text"),
    ]


def test_year_first_in_brackets():
    assert rows(WA / "WhatsApp Chat with Mei.txt") == [
        ("2018-06-13 21:25:15", "Mei", "你好! 明天有空吗?", False, "text"),
        ("2018-06-13 21:26:02", "Jun", "有空, 下午", True, "text"),
        ("2018-06-14 08:00:00", "Mei", "好的", False, "text"),
    ]


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")])
def test_utf16_with_a_bom(tmp_path, encoding, bom):
    path = tmp_path / "WhatsApp Chat with Ville.txt"
    text = (WA / "WhatsApp Chat with Ville.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    path.write_bytes(bom + text.encode(encoding))
    assert detect_format(path) == "whatsapp"
    assert rows(path) == rows(WA / "WhatsApp Chat with Ville.txt")


def test_a_file_mixing_android_and_ios_lines_reads_every_message():
    # each layout keeps its own day/month order: "12/15/25" is month-first, "15/12/2025" day-first
    assert rows(WA / "WhatsApp Chat with Rosa.txt") == [
        ("2025-12-15 10:30:00", "Rosa", "morning! still on for lunch?", False, "text"),
        ("2025-12-15 10:32:03", "Diego", "yes, 1pm?", True, "text"),
        ("2025-12-15 10:34:00", "Rosa", "perfect", False, "text"),
        ("2025-12-15 10:36:00", "Diego", "see you at the usual place", True, "text"),
        ("2025-12-15 10:40:00", "Rosa", "👍", False, "text"),
    ]


def test_a_quoted_header_in_another_padding_is_part_of_the_message():
    assert rows(WA / "WhatsApp Chat with Iris.txt") == [
        ("2019-02-01 09:00:00", "Iris", "do you remember what you wrote last year?", False, "text"),
        ("2019-02-01 09:05:12", "Pim", "I copied it:\n[1.2.2018, 00:00:00] Pim: happy new year!!\nthat one", True,
         "text"),
        ("2019-02-01 09:06:00", "Iris", "haha yes", False, "text"),
        ("2019-02-10 18:30:00", "Iris", "dinner on friday?", False, "text"),
        ("2019-02-10 18:31:45", "Pim", "sure", True, "text"),
    ]


def test_a_rare_header_in_another_layout_inside_a_long_file_is_part_of_the_message(tmp_path):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    lines = [f"13/07/2024, 10:{m:02d} - {'Ann' if m % 2 else 'Bo'}: message {m}" for m in range(40)]
    lines.insert(11, "[13/07/2024, 10:30:00] Ann: a header in the iOS layout, pasted")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    msgs = list(read_export(path))
    assert len(msgs) == 40
    assert msgs[10].text == "message 10\n[13/07/2024, 10:30:00] Ann: a header in the iOS layout, pasted"

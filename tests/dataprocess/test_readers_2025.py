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
from helpers.reading import both_ways_of_reading  # noqa: F401 (autouse: every test twice)

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


@pytest.mark.parametrize("layout", ["ios", "android", "ios-us", "android-us", "macos-zip"])
def test_locations_contact_cards_and_polls_are_the_senders_messages(tmp_path, layout):
    path = {"ios": IOS_CHAT, "android": ANDROID_CHAT,
            "ios-us": WA / "shared_ios_us" / "WhatsApp Chat - Marta.txt",
            "android-us": WA / "shared_android_us" / "WhatsApp Chat with Marta.txt"}.get(layout) or _macos_zip(tmp_path)
    assert detect_format(path) == "whatsapp"
    msgs = list(read_export(path))
    assert len(msgs) == 10
    by_sender = Counter(m.sender for m in msgs if m.kind != "system")
    assert by_sender == {"Marta": 3, "Jon": 5}  # Marta wrote 3: a text, a location, a poll
    assert {m.chat for m in msgs} == {"Marta"} and not any(m.is_group for m in msgs)
    shared = [(m.sender, m.kind, m.text.splitlines()[0]) for m in msgs if m.kind == "media"]
    location = "location" if layout.startswith("android") else "Location"
    assert [s[:2] for s in shared] == [("Marta", "media"), ("Jon", "media"), ("Marta", "media"), ("Jon", "media")]
    assert shared[0][2] == f"{location}: https://maps.google.com/?q=41.38506,2.17340"
    assert shared[1][2].endswith(("Bakery Sol.vcf>", "Bakery Sol.vcf (file attached)", "Contact card omitted"))
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


# ---------------------------------------------------------------- Messenger end-to-end, Instagram

E2EE = FIXTURES / "messenger" / "e2ee_download"
IG_THREAD = (FIXTURES / "instagram" / "your_instagram_activity" / "messages" / "inbox"
             / "mariaflores_17841400123456789")


def rows(msgs):
    return [(m.timestamp.strftime("%Y-%m-%d %H:%M:%S"), m.sender, m.text, m.from_me, m.kind) for m in msgs]


def test_messenger_end_to_end_download_thread():
    path = E2EE / "LinhNguyen_12.json"
    assert detect_format(path) == "messenger"
    msgs = list(read_export(path))
    assert {(m.chat, m.is_group) for m in msgs} == {("Linh Nguyễn", False)}  # threadName without "_12"
    assert rows(msgs) == [
        ("2025-02-14 19:30:00", "Linh Nguyễn", "Chúc mừng Valentine! 😂", False, "text"),  # mojibake repaired
        ("2025-02-14 19:31:10", "Alex Rivera", "café later?", True, "text"),  # its ❤ reaction is no message
        ("2025-02-14 19:32:00", "Linh Nguyễn", "", False, "media"),  # a photo
        ("2025-02-14 19:33:00", "Alex Rivera", "", True, "system"),  # isUnsent
        ("2025-02-14 19:35:00", "Linh Nguyễn", "https://www.instagram.com/reel/C9xYzAbCdEf/", False, "text"),
        ("2025-02-14 19:36:00", "Alex Rivera", "", True, "system"),  # a placeholder (unavailable)
        ("2025-02-14 19:40:00", "Alex Rivera", "", True, "media"),  # a sticker (.webp)
        ("2025-02-14 19:41:00", "Linh Nguyễn", "", False, "media"),  # "Failed to download media"
        ("2025-02-14 19:45:00", "Linh Nguyễn", "Linh Nguyễn called you.", False, "system"),
        ("2025-02-14 19:47:00", "Alex Rivera", "yes, 8pm at the usual café 😊", True, "text"),
    ]


def test_messenger_end_to_end_download_folder_each_thread_a_chat_in_time_order():
    assert detect_format(E2EE) == "messenger"
    msgs = list(read_export(E2EE))
    by_chat = {}
    for m in msgs:
        by_chat.setdefault(m.chat, []).append(m)
    assert set(by_chat) == {"Linh Nguyễn", "Sam Okafor"}
    sam = by_chat["Sam Okafor"]  # written newest first: read oldest first
    assert [(m.sender, m.from_me) for m in sam] == [("Sam Okafor", False), ("Alex Rivera", True)]
    assert sam[0].timestamp < sam[1].timestamp


def test_messenger_end_to_end_owner_is_the_one_in_every_thread(tmp_path):
    # a group thread (no title to tell the contact by): Alex is in every thread of the download
    shutil.copytree(E2EE, tmp_path / "dl")
    group = {"participants": ["Sam Okafor", "Alex Rivera", "Linh Nguy\u00e1\u00bb\u0085n"], "threadName": "Climbers_4",
             "messages": [{"isUnsent": False, "media": [], "reactions": [], "senderName": "Sam Okafor",
                           "text": "who's in for saturday?", "timestamp": 1717236000000, "type": "text"}]}
    (tmp_path / "dl" / "Climbers_4.json").write_text(json.dumps(group), encoding="utf-8")
    msgs = [m for m in read_export(tmp_path / "dl" / "Climbers_4.json", require_owner=True)]
    assert [(m.sender, m.is_group, m.from_me) for m in msgs] == [("Sam Okafor", True, False)]
    as_sam = list(read_export(tmp_path / "dl" / "Climbers_4.json", me="Sam Okafor"))
    assert [m.from_me for m in as_sam] == [True]


def test_instagram_thread_in_time_order_across_its_files():
    assert detect_format(IG_THREAD) == "messenger" and detect_format(IG_THREAD / "message_2.json") == "messenger"
    msgs = list(read_export(IG_THREAD))
    stamps = [m.timestamp for m in msgs]
    assert stamps == sorted(stamps)  # the two files' ranges overlap (01:05 in message_1, 01:13 in message_2)
    assert {m.chat for m in msgs} == {"María Flores"}
    assert rows(msgs) == [
        ("2024-11-03 23:40:00", "María Flores", "are you up? 😅", False, "text"),
        ("2024-11-03 23:45:00", "Sam Kim", "https://www.instagram.com/reel/DBx1aB2cD3e/", True, "media"),  # a reel
        ("2024-11-03 23:52:00", "María Flores", "Reacted 😂 to your message ", False, "reaction"),
        ("2024-11-04 00:20:00", "Sam Kim", "Liked a message", True, "reaction"),
        ("2024-11-04 01:05:00", "Sam Kim", "still up, send it", True, "text"),
        ("2024-11-04 01:13:00", "María Flores", "", False, "media"),  # the photo
        ("2024-11-04 01:20:00", "Sam Kim", "", True, "media"),  # a sticker
        ("2024-11-04 02:17:00", "María Flores", "María Flores started an audio call", False, "system"),
        ("2024-11-04 02:30:00", "María Flores", "Audio call ended", False, "system"),
        ("2024-11-04 02:36:00", "María Flores", "haha that reel 😂 café tomorrow?", False, "text"),
        ("2024-11-04 02:40:00", "Sam Kim", "gn ❤️", True, "text"),
    ]


def test_instagram_owner_from_personal_information(tmp_path):
    # a group thread: only the account's own personal_information.json says who I am
    root = tmp_path / "your_instagram_activity"
    shutil.copytree(IG_THREAD.parents[3], tmp_path, dirs_exist_ok=True)
    thread = root / "messages" / "inbox" / "climbers_1784"
    thread.mkdir()
    (thread / "message_1.json").write_text(json.dumps({
        "participants": [{"name": "Sam Kim"}, {"name": "Jo"}, {"name": "Ren"}], "title": "climbers",
        "messages": [{"sender_name": "Sam Kim", "timestamp_ms": 1730688000000, "content": "sat?"},
                     {"sender_name": "Jo", "timestamp_ms": 1730687000000, "content": "who's in"}],
        "is_still_participant": True, "thread_path": "inbox/climbers_1784"}), encoding="utf-8")
    msgs = list(read_export(thread, require_owner=True))
    assert [(m.sender, m.from_me, m.is_group) for m in msgs] == [("Jo", False, True), ("Sam Kim", True, True)]


def test_instagram_files_given_one_by_one_make_one_chat_in_order(tmp_path):
    from core.workspace import Workspace
    from dataprocess.pipeline import run_process
    from dataprocess.rules import Rules

    result = run_process([IG_THREAD / "message_1.json", IG_THREAD / "message_2.json"], Workspace(tmp_path / "ws"),
                         rules=Rules(since=__import__("datetime").datetime(2020, 1, 1)))
    assert result.stats["kept_chats"] == 1 and result.stats["read"] == 11


# ---------------------------------------------------------------- Discord's own data package

PKG_2025 = FIXTURES / "discord" / "package_2025"
PKG_2021 = FIXTURES / "discord" / "package_2021"


def _zip_folder(folder: Path, path: Path, top: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, top + file.relative_to(folder).as_posix())
    return path


def test_discord_package_each_channel_a_chat_only_my_messages(tmp_path):
    expected = [
        ("Climbing Club #general", True, "2024-12-01 09:12:44", "new holds on the overhang!", "text"),
        ("Climbing Club #general", True, "2024-12-02 18:30:00", "anyone up for bouldering thursday?", "text"),
        ("kai.m", False, "2025-01-18 20:59:40", "ok wait, line one\nand line two", "text"),
        ("kai.m", False, "2025-01-18 21:01:05", "this one's good https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
         "text"),
        ("kai.m", False, "2025-01-18 21:02:31", "", "media"),  # an attachment only
        ("kai.m", False, "2025-01-18 21:10:47", "", "system"),  # a sticker or a call: the package does not say
        ("kai.m", False, "2025-01-18 21:14:09", "see you at the wall at 7 🧗", "text"),
        ("trip to fontainebleau", True, "2024-12-20 10:00:00", "I booked the gîte 🎉", "text"),
    ]
    given = [PKG_2025, PKG_2025 / "Messages", _zip_folder(PKG_2025, tmp_path / "package.zip"),
             _zip_folder(PKG_2025, tmp_path / "nested.zip", top="package/")]
    for path in given:
        assert detect_format(path) == "discord-package", path
        msgs = list(read_export(path))
        assert [(m.chat, m.is_group, m.timestamp.strftime("%Y-%m-%d %H:%M:%S"), m.text, m.kind) for m in msgs] \
            == expected, path
        assert {(m.sender, m.from_me) for m in msgs} == {("Rin", True)}  # account/user.json's global_name


def test_discord_package_2021_csv_layout_and_a_bad_row(tmp_path):
    skipped: list = []
    msgs = list(read_export(PKG_2021, skipped=skipped))
    assert [(m.chat, m.timestamp.strftime("%H:%M:%S"), m.text, m.kind) for m in msgs] == [
        ("kai", "19:15:00", "are you coming tonight?", "text"),  # "kai#0042": the discriminator dropped
        ("kai", "19:20:01", "", "media"),
        ("kai", "19:22:10", 'haha yes, "that" one\nsecond line', "text"),  # a quoted, multi-line CSV field
        ("Old Server #Unknown channel", "12:00:00", "gg everyone", "text"),
    ]
    assert {m.sender for m in msgs} == {"rin"}
    (file, line, reason), = skipped
    assert file.endswith("782736451092837465/messages.csv") and line == 5 and "not a time" in reason


def test_discord_package_dm_named_from_recipients_when_the_index_does_not(tmp_path):
    shutil.copytree(PKG_2025, tmp_path / "pkg")
    (tmp_path / "pkg" / "Messages" / "index.json").write_text("{}", encoding="utf-8")
    chats = {m.chat for m in read_export(tmp_path / "pkg")}
    assert "Discord user 318273645091827364" in chats and "Climbing Club #general" in chats


def test_discord_package_alone_makes_no_reply_pairs_and_says_so(tmp_path):
    result = CliRunner().invoke(main, ["process", str(PKG_2025), "--workspace", str(tmp_path / "ws"),
                                       "--since", "2020-01-01"])
    assert result.exit_code != 0 and "no reply pairs" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ws" / "data").exists() or not any((tmp_path / "ws" / "data").iterdir())


def test_discord_package_zip_bomb_member_is_refused(tmp_path):
    path = tmp_path / "package.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("messages/index.json", '{"1187293846512345678": "Direct Message with kai"}')
        archive.writestr("messages/c1187293846512345678/messages.json", "[" + " " * (64 << 20) + "]")
    assert detect_format(path) == "discord-package"
    with pytest.raises(ChatExportError, match="zip bomb"):
        list(read_export(path))


# ---------------------------------------------------------------- one bad record never costs the file


def _telegram_chat(texts: list[str]) -> str:
    messages = ",\n".join(
        f'  {{"id": {i}, "type": "message", "date": "2024-06-01T10:0{i}:00", "date_unixtime": "{1717236000 + 60 * i}", '
        f'"from": "{"Omar" if i % 2 else "Léa"}", "from_id": "user{1 + i % 2}", "text": "{text}"}}'
        for i, text in enumerate(texts))
    return '{"name": "Omar", "type": "personal_chat", "id": 77, "messages": [\n' + messages + "\n]}\n"


def test_telegram_lone_surrogate_keeps_the_message_with_a_replacement_character(tmp_path):
    path = tmp_path / "result.json"
    # written by hand as an exporter writes an emoji cut in half: valid JSON, not valid UTF-16
    path.write_text(_telegram_chat(["hi", "cut \\ud83d here", "still \\ud83d\\ude00 whole", "bye"]), encoding="utf-8")
    notes: list[str] = []
    msgs = list(read_export(path, notes=notes))
    assert [m.text for m in msgs] == ["hi", "cut \ufffd here", "still 😀 whole", "bye"]
    assert notes == [f"{path}:3: a broken character (\\ud83d, half of an emoji) read as U+FFFD; the message is kept"]


@pytest.mark.parametrize("layout", ["classic", "e2ee", "instagram"])
def test_messenger_timestamp_beyond_64_bits_skips_that_record_only(tmp_path, layout):
    if layout == "e2ee":
        source = (E2EE / "LinhNguyen_12.json").read_text(encoding="utf-8")
        path = tmp_path / "LinhNguyen_12.json"
        path.write_text(source.replace('"timestamp": 1739561520000', '"timestamp": 99999999999999999999999999'),
                        encoding="utf-8")
        total, before = 10, 0
    else:
        folder = IG_THREAD if layout == "instagram" else (FIXTURES / "messenger" / "your_activity" / "messages"
                                                          / "inbox" / "linhnguyen_1234")
        source = (folder / "message_1.json").read_text(encoding="utf-8")
        stamp = next(part.split(",")[0].strip() for part in source.split('"timestamp_ms":')[1:2])
        path = tmp_path / "message_1.json"
        path.write_text(source.replace(f'"timestamp_ms": {stamp}', '"timestamp_ms": 99999999999999999999999', 1),
                        encoding="utf-8")
        base: list = []
        total = len(list(read_export(folder / "message_1.json", skipped=base)))
        before = len(base)  # the classic fixture holds one bad time of its own
    skipped: list = []
    msgs = list(read_export(path, skipped=skipped))
    assert len(msgs) == total - 1 and len(skipped) == before + 1
    assert skipped[0][0].endswith(path.name) and isinstance(skipped[0][1], int)
    assert any("out of range" in reason for _, _, reason in skipped)


def test_a_name_that_is_not_utf8_reads_and_writes_its_report(tmp_path):
    raw = os.fsencode(tmp_path) + b"/WhatsApp Chat with Giulia \xff\xfe.txt"
    shutil.copy(WA / "WhatsApp Chat with Giulia.txt", raw)
    path = Path(os.fsdecode(raw))
    result = CliRunner().invoke(main, ["process", str(path), "--workspace", str(tmp_path / "ws"),
                                       "--since", "2010-01-01", "--me", "Paolo"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Giulia \\xff\\xfe.txt" in result.output
    report = json.loads((tmp_path / "ws" / "data" / "report.json").read_text(encoding="utf-8"))
    assert any("Giulia \\xff\\xfe.txt" in name for name in report["inputs"])
    assert (tmp_path / "ws" / "data" / "train.jsonl").exists()


@pytest.mark.parametrize("make", ["fifo", "socket"])
def test_a_special_file_named_like_an_export_is_refused_at_once(tmp_path, make):
    import signal
    import socket

    path = tmp_path / "WhatsApp Chat with Ann.txt"
    if make == "fifo":
        os.mkfifo(path)
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("hung on a special file")))
    signal.alarm(20)
    try:
        with pytest.raises(ChatExportError, match="not a regular file"):
            list(read_export(path))
        result = CliRunner().invoke(main, ["process", str(path), "--workspace", str(tmp_path / "ws")])
    finally:
        signal.alarm(0)
        if make == "socket":
            server.close()
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "not a regular file" in result.output
    assert not (tmp_path / "ws" / "data").exists() or not any((tmp_path / "ws" / "data").iterdir())


def test_the_summary_names_each_failure_as_file_and_line(tmp_path):
    path = tmp_path / "WhatsApp Chat with Giulia.txt"
    text = (WA / "WhatsApp Chat with Giulia.txt").read_text(encoding="utf-8")
    path.write_text(text.replace("12/09/2012 21:05:37", "31/02/2012 21:05:37"), encoding="utf-8")
    result = CliRunner().invoke(main, ["process", str(path), "--workspace", str(tmp_path / "ws"),
                                       "--since", "2010-01-01"])
    assert result.exit_code == 0, result.output
    assert f"{path}:2" in result.output and "skipped 1 malformed record" in result.output


def test_a_byte_that_is_not_utf8_is_one_broken_character_not_a_refused_file(tmp_path):
    path = tmp_path / "WhatsApp Chat with Giulia.txt"
    data = (WA / "WhatsApp Chat with Giulia.txt").read_bytes()
    path.write_bytes(data.replace("sì, tutto bene".encode(), b"s\xec, tutto bene"))  # Latin-1 in a UTF-8 file
    notes: list[str] = []
    msgs = list(read_export(path, notes=notes))
    assert len(msgs) == 6 and msgs[1].text == "s\ufffd, tutto bene"
    assert f"{path}:2: 1 byte that is not UTF-8 text read as U+FFFD; the text is kept" in notes

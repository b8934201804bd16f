"""Export readers: every format and layout from tests/fixtures, detection, `me`, bad input."""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataprocess import FORMATS, ChatExportError, detect_format, read_export
from dataprocess.pipeline import run_process
from dataprocess.readers import READERS
from dataprocess.readers.imessage_db import decode_attributed_body
from dataprocess.readers.messenger import fix_mojibake
from dataprocess.readers.telegram import text_of
from core.workspace import Workspace

FIXTURES = Path(__file__).parents[1] / "fixtures"
WA = FIXTURES / "whatsapp"
TG_CHAT = FIXTURES / "telegram" / "chat_dima" / "result.json"
TG_ACCOUNT = FIXTURES / "telegram" / "account" / "result.json"
INBOX = FIXTURES / "messenger" / "your_activity" / "messages" / "inbox"
FB_LINH = INBOX / "linhnguyen_1234"
FB_GROUP = INBOX / "climbers_5678"
DC_DM = FIXTURES / "discord" / "dm_alex.json"
DC_SERVER = FIXTURES / "discord" / "server_general.json"
LRM, NNBSP = "\u200e", "\u202f"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Readers give naive local time: pin the local zone so the expected datetimes are exact."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def rows(messages):
    return [(m.timestamp.strftime("%Y-%m-%d %H:%M:%S"), m.sender, m.text, m.from_me, m.kind) for m in messages]


def read(path, **kw):
    return list(read_export(path, **kw))


# ---------------------------------------------------------------- WhatsApp

def test_whatsapp_android_24h_dayfirst_one_on_one():
    path = WA / "WhatsApp Chat with Alex.txt"
    msgs = read(path)
    assert {(m.chat, m.is_group, m.source) for m in msgs} == {("Alex", False, str(path))}
    assert rows(msgs) == [
        ("2024-03-15 09:58:00", "", "Messages and calls are end-to-end encrypted. No one outside of this chat, "
         "not even WhatsApp, can read or listen to them. Tap to learn more.", False, "system"),
        ("2024-03-15 10:00:00", "Alex", "hey! are you around this weekend?", False, "text"),
        ("2024-03-15 10:01:00", "Alex", "thinking of climbing on saturday", False, "text"),
        ("2024-03-15 10:04:00", "Maya", "yes!! saturday works", True, "text"),
        ("2024-03-15 10:04:00", "Maya", "what time?", True, "text"),
        ("2024-03-15 10:06:00", "Alex", "9ish? I can drive\nthat way we beat the crowds", False, "text"),
        ("2024-03-15 10:07:00", "Maya", "perfect, see you then", True, "text"),
        ("2024-03-15 10:08:00", "Alex", "<Media omitted>", False, "media"),
        ("2024-03-15 10:09:00", "Maya", "You deleted this message", True, "system"),
        ("2024-03-15 18:30:00", "Alex", "שלום! מה שלומך?", False, "text"),
        ("2024-03-15 18:35:00", "Maya", "הכל טוב, תודה", True, "text"),
        ("2024-03-16 21:15:00", "", "Your security code with Alex changed. Tap to learn more.", False, "system"),
        ("2024-03-16 21:15:00", "Alex", "This message was deleted", False, "system"),
        ("2024-03-16 21:16:00", "Alex", "did you get home ok?", False, "text"),
        ("2024-03-16 21:20:00", "Maya", "yep, all good. thanks for driving", True, "text"),
    ]


IOS_GROUP = [
    ("2024-03-14 21:00:00", "Climbers", "Messages and calls are end-to-end encrypted. No one outside of this chat, "
     "not even WhatsApp, can read or listen to them.", False, "system"),
    ("2024-03-14 21:00:05", "Climbers", "Maya created group “Climbers”", False, "system"),
    ("2024-03-14 21:00:06", "Climbers", "Maya added Alex and Dima", False, "system"),
    ("2024-03-14 21:01:10", "Maya", "who's in for bouldering tomorrow?", True, "text"),
    ("2024-03-14 21:03:45", "Dima", "Я в деле! Во сколько?", False, "text"),
    ("2024-03-14 21:04:02", "Alex", "me too", False, "text"),
    ("2024-03-14 21:05:30", "Maya", "6pm at the gym\nbring chalk", True, "text"),
    ("2024-03-14 21:06:00", "Alex", "image omitted", False, "media"),
    ("2024-03-14 21:06:30", "Dima", "<attached: 00000012-PHOTO-2024-03-14-21-06-30.jpg>", False, "media"),
    ("2024-03-14 21:07:00", "Maya", "sticker omitted", True, "media"),
    ("2024-03-14 21:08:00", "Maya", "You deleted this message.", True, "system"),
    ("2024-03-14 21:10:00", "Dima", "Missed voice call", False, "system"),
    ("2024-03-15 00:15:00", "Alex", "still up?", False, "text"),
    ("2024-03-15 00:20:00", "Maya", "barely, going to sleep. see you at 6", True, "text"),
]


def test_whatsapp_ios_group_12h_monthfirst_marks_and_me_from_deleted_line():
    msgs = read(WA / "ios_group_chat.txt")
    assert rows(msgs) == IOS_GROUP
    # iOS files group notices under the group's name: that is the chat, and it is a group
    assert {(m.chat, m.is_group) for m in msgs} == {("Climbers", True)}


def test_whatsapp_zip_is_read_in_place(tmp_path):
    archive = tmp_path / "WhatsApp Chat - Climbers.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(WA / "ios_group_chat.txt", "_chat.txt")
        zf.writestr("00000012-PHOTO-2024-03-14-21-06-30.jpg", b"\xff\xd8\xff")
    assert detect_format(archive) == "whatsapp"
    msgs = read(archive)
    assert rows(msgs) == IOS_GROUP and {m.chat for m in msgs} == {"Climbers"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]  # nothing extracted

    android = tmp_path / "WhatsApp Chat with Alex.zip"
    with zipfile.ZipFile(android, "w") as zf:
        zf.write(WA / "WhatsApp Chat with Alex.txt", "WhatsApp Chat with Alex.txt")
    assert rows(read(android)) == rows(read(WA / "WhatsApp Chat with Alex.txt"))


def test_whatsapp_spanish_a_m_p_m_dayfirst_and_vietnamese():
    msgs = read(WA / "Chat de WhatsApp con Linh.txt")
    assert {(m.chat, m.is_group) for m in msgs} == {("Linh", False)}
    assert rows(msgs)[1:] == [
        ("2024-04-02 08:16:00", "Linh", "Chào bạn! Hôm nay bạn có rảnh không?", False, "text"),
        ("2024-04-02 08:20:00", "Carlos", "hola Linh! sí, después de las 5", True, "text"),
        ("2024-04-02 08:21:00", "Linh", "<Multimedia omitido>", False, "media"),
        ("2024-04-02 12:30:00", "Linh", "Tuyệt vời, hẹn gặp lại lúc 5 giờ nhé", False, "text"),
        ("2024-04-02 12:34:00", "Carlos", "perfecto, ahí nos vemos", True, "text"),
        ("2024-04-02 12:35:00", "Linh", "Se eliminó este mensaje.", False, "system"),
        ("2024-04-13 19:45:00", "Carlos", "Eliminaste este mensaje.", True, "system"),
        ("2024-04-13 19:46:00", "Carlos", "¿cenamos el sábado?", True, "text"),
    ]
    assert msgs[0].kind == "system" and msgs[0].text.startswith("Los mensajes y las llamadas")


def test_whatsapp_german_two_digit_year_ambiguous_date_and_file_attached():
    msgs = read(WA / "WhatsApp-Chat mit Lena.txt")
    assert {m.chat for m in msgs} == {"Lena"}
    # 05.03.24: both fields <= 12 and a single date: the tie goes to day-first (5 March)
    assert rows(msgs) == [
        ("2024-03-05 14:02:00", "Lena", "Hallo! Kommst du heute Abend?", False, "text"),
        ("2024-03-05 14:05:00", "Jonas", "klar, um 8?", True, "text"),
        ("2024-03-05 14:06:00", "Lena", "<Medien ausgeschlossen>", False, "media"),
        ("2024-03-05 14:07:00", "Lena", "Diese Nachricht wurde gelöscht", False, "system"),
        ("2024-03-05 14:09:00", "Jonas", "schau mal", True, "text"),  # the caption under the attachment
        ("2024-03-05 14:10:00", "Jonas", "VID-20240305-WA0004.mp4 (Datei angehängt)", True, "media"),
    ]


def test_whatsapp_year_first_french():
    msgs = read(WA / "Discussion WhatsApp avec Camille.txt")
    assert {m.chat for m in msgs} == {"Camille"}
    assert rows(msgs) == [
        ("2024-06-01 09:00:00", "Camille", "Salut ! Tu as vu le message ?", False, "text"),
        ("2024-06-01 09:02:00", "Hugo", "oui, je regarde ça", True, "text"),
        ("2024-06-01 09:03:00", "Camille", "<Média omis>", False, "media"),
    ]


@pytest.mark.parametrize("line, expected", [
    ("[13/02/2024, 21:05:09] Ann: hi", "2024-02-13 21:05:09"),
    (f"{LRM}[2/13/24, 9:05:09{NNBSP}PM] Ann: hi", "2024-02-13 21:05:09"),
    ("[2/13/24, 12:05:09 AM] Ann: hi", "2024-02-13 00:05:09"),
    ("[13.02.24, 12:05:09 PM] Ann: hi", "2024-02-13 12:05:09"),
    ("13/02/2024, 21:05 - Ann: hi", "2024-02-13 21:05:00"),
    ("2/13/2024, 9:05 pm - Ann: hi", "2024-02-13 21:05:00"),
    ("13/2/24, 9:05\u00a0p.\u00a0m. - Ann: hi", "2024-02-13 21:05:00"),
    ("13/2/24, 9:05 a.m. - Ann: hi", "2024-02-13 09:05:00"),
    ("13-02-2024 21:05 - Ann: hi", "2024-02-13 21:05:00"),
    ("2024/02/13, 21:05 - Ann: hi", "2024-02-13 21:05:00"),
    ("[2024-02-13, 21:05:09] Ann: hi", "2024-02-13 21:05:09"),
])
def test_whatsapp_header_layouts(tmp_path, line, expected):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text(line + "\n", encoding="utf-8")
    assert detect_format(path) == "whatsapp"
    (msg,) = read(path)
    assert (str(msg.timestamp), msg.sender, msg.text, msg.from_me) == (expected, "Ann", "hi", False)


def test_whatsapp_date_order_from_the_whole_file(tmp_path):
    # every field <= 12: the reading under which time runs forward wins (here month-first)
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text("1/5/24, 10:00 - Ann: a\n1/9/24, 10:00 - Ann: b\n2/3/24, 10:00 - Ann: c\n"
                    "2/11/24, 10:00 - Ann: d\n", encoding="utf-8")
    assert [m.timestamp.date().isoformat() for m in read(path)] == \
        ["2024-01-05", "2024-01-09", "2024-02-03", "2024-02-11"]
    # a first field above 12 late in the file makes the whole file day-first
    path.write_text("1/2/24, 10:00 - Ann: a\n" + "3/2/24, 10:00 - Ann: b\n" * 50 + "13/2/24, 10:00 - Ann: c\n",
                    encoding="utf-8")
    dates = [m.timestamp.date().isoformat() for m in read(path)]
    assert dates[0] == "2024-02-01" and dates[-1] == "2024-02-13"


def test_whatsapp_me_unknown_reads_with_nothing_from_me_unless_required(tmp_path):
    group = tmp_path / "trip.txt"
    group.write_text("01/07/2024, 10:00 - Ann: hi all\n01/07/2024, 10:01 - Bo: hey\n"
                     "01/07/2024, 10:02 - Cy: yo\n13/07/2024, 10:00 - Bo: ok\n", encoding="utf-8")
    # like chat-miner's parsers: every message, none of them mine
    assert [(m.sender, m.from_me) for m in read(group)] == [("Ann", False), ("Bo", False), ("Cy", False),
                                                            ("Bo", False)]
    # building reply pairs needs me: the error lists the names to choose from
    with pytest.raises(ChatExportError, match=r"--me.*'Ann', 'Bo', 'Cy'"):
        read(group, require_owner=True)
    # a --me that names nobody here: I did not write in this chat
    assert not any(m.from_me for m in read(group, me="Dee", require_owner=True))
    msgs = read(group, me="bo")  # matched case-insensitively to the name in the export
    assert [m.from_me for m in msgs] == [False, True, False, True]
    assert {(m.chat, m.is_group) for m in msgs} == {("trip", True)}
    # a one-on-one file named after the contact: the other participant is me, whatever --me says
    one = tmp_path / "WhatsApp Chat with Ann.txt"
    one.write_text("13/07/2024, 10:00 - Ann: hi\n13/07/2024, 10:01 - Maya Cohen: hey\n", encoding="utf-8")
    assert [m.from_me for m in read(one, me="Maya")] == [False, True]


def test_whatsapp_text_starting_on_the_next_line_and_names_with_colons(tmp_path):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text("13/07/2024, 10:00 - Ann:\nfirst line\nsecond line\n"
                    "13/07/2024, 10:01 - Ann changed the subject from \"Trip\" to \"Trip: Rome\"\n"
                    "13/07/2024, 10:02 - Me: see you at 10:30\n", encoding="utf-8")
    msgs = read(path, me="Me")
    assert {(m.chat, m.is_group) for m in msgs} == {("Ann", True)}  # only groups have a subject
    assert [(m.sender, m.text, m.kind) for m in msgs] == [
        ("Ann", "first line\nsecond line", "text"),
        ("", 'Ann changed the subject from "Trip" to "Trip: Rome"', "system"),
        ("Me", "see you at 10:30", "text"),
    ]


def test_whatsapp_title_from_a_decomposed_file_name(tmp_path):
    import unicodedata

    path = tmp_path / unicodedata.normalize("NFD", "WhatsApp Chat with Chloé.txt")
    path.write_text("13/07/2024, 10:00 - Chloé: salut\n13/07/2024, 10:01 - Hugo: ça va ?\n", encoding="utf-8")
    assert [(m.chat, m.from_me) for m in read(path)] == [("Chloé", False), ("Chloé", True)]


def test_whatsapp_malformed_lines_are_skipped_with_line_numbers(tmp_path):
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    path.write_text("13/07/2024, 10:00 - Ann: hi\n13/07/2024, 10:01 - Me: hey\n31/02/2024, 10:02 - Ann: bad date\n"
                    "and its second line\n13/07/2024, 25:03 - Ann: bad hour\n13/07/2024, 10:04 - Ann: fine\n",
                    encoding="utf-8")
    skipped = []
    msgs = read(path, skipped=skipped)
    assert [m.text for m in msgs] == ["hi", "hey", "fine"]
    assert [(Path(f).name, line) for f, line, _ in skipped] == [(path.name, 3), (path.name, 5)]
    # text before the first header: the format must then be forced (detection looks at line 1)
    path.write_text("exported by a tool\n13/07/2024, 10:00 - Ann: hi\n13/07/2024, 10:01 - Me: yo\n", encoding="utf-8")
    with pytest.raises(ChatExportError, match="unrecognised"):
        read(path)
    skipped = []
    assert [m.text for m in read(path, fmt="whatsapp", skipped=skipped)] == ["hi", "yo"]
    assert [line for _, line, _ in skipped] == [1]


# ---------------------------------------------------------------- Telegram

def test_telegram_single_chat_entities_service_sticker_forward():
    skipped = []
    msgs = read(TG_CHAT, skipped=skipped)
    assert {(m.chat, m.is_group) for m in msgs} == {("Дима", False)}
    assert rows(msgs) == [
        ("2024-03-10 18:55:00", "Дима", "phone_call", False, "system"),
        ("2024-03-10 19:00:00", "Дима", "Привет! Ты сегодня свободна?", False, "text"),
        ("2024-03-10 19:02:10", "Maya", "Привет! Да, после шести, а что?", True, "text"),
        ("2024-03-10 19:03:00", "Дима", "Концерт в восемь: https://example.com/concert", False, "text"),
        ("2024-03-10 19:03:30", "Дима", "", False, "media"),  # sticker
        ("2024-03-10 19:05:00", "Maya", "Идём! билеты уже есть?", True, "text"),  # text_link shows its text
        ("2024-03-10 19:06:00", "Дима", "Doors open at 19:30", False, "media"),  # forwarded
        ("2024-03-10 19:07:00", "Дима", "мой билет", False, "text"),  # photo with a caption
        ("2024-03-10 19:08:00", "Maya", "", True, "media"),  # photo
        ("2024-03-10 19:20:00", "Дима", "Maya, ты где?", False, "text"),
        ("2024-03-10 19:24:00", "Maya", "уже у входа 🙂", True, "text"),
    ]
    assert [(Path(f).name, i) for f, i, _ in skipped] == [("result.json", 9)]


def test_telegram_account_export_me_from_personal_information():
    msgs = read(TG_ACCOUNT, me="someone else")  # the export says who I am; --me is only the persona
    chats = {m.chat: m.is_group for m in msgs}
    assert chats == {"Alex": False, "Climbing crew": True}  # saved messages and channels left out
    alex = [m for m in msgs if m.chat == "Alex"]
    assert rows(alex) == [
        ("2024-04-02 09:00:00", "Alex", "morning! coffee before work?", False, "text"),
        ("2024-04-02 09:03:00", "Maya Cohen", "yes please", True, "text"),
        ("2024-04-02 09:03:20", "Maya Cohen", "the usual place? #caffeine", True, "text"),
        ("2024-04-02 09:05:00", "Alex", "see you in 10", False, "text"),
        ("2024-04-02 09:06:00", "Maya Cohen", "running late, 15", True, "text"),
        ("2024-04-02 12:30:00", "Alex", "", False, "media"),  # voice message
        ("2024-04-02 12:40:00", "Alex", "lunch tomorrow?", False, "text"),
        ("2024-04-02 12:41:00", "Maya Cohen", "can't tomorrow, thursday?", True, "text"),
    ]
    group = [m for m in msgs if m.chat == "Climbing crew"]
    assert [(m.sender, m.kind, m.from_me) for m in group] == [
        ("Maya Cohen", "system", True), ("Alex", "text", False), ("Дима", "text", False), ("Maya Cohen", "text", True)]


def test_telegram_text_arrays_and_group_export_needs_me(tmp_path):
    assert text_of(["a ", {"type": "bold", "text": "b"}, {"type": "text_link", "text": "c", "href": "u"}]) == "a bc"
    assert text_of("plain") == "plain" and text_of(None) == ""
    account = json.loads(TG_ACCOUNT.read_text(encoding="utf-8"))
    group = account["chats"]["list"][1]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(group, ensure_ascii=False), encoding="utf-8")
    assert detect_format(path) == "telegram"
    assert not any(m.from_me for m in read(path))
    with pytest.raises(ChatExportError, match=r"--me.*'Alex', 'Maya Cohen', 'Дима'"):
        read(path, require_owner=True)
    assert [m.from_me for m in read(path, me="user777000")] == [True, False, False, True]
    assert [m.from_me for m in read(path, me="maya cohen")] == [True, False, False, True]


# ---------------------------------------------------------------- Messenger

LINH = [
    ("2024-05-03 09:24:00", "Linh Nguyễn", "", False, "media"),  # sticker
    ("2024-05-03 09:25:00", "Linh Nguyễn", "Chào Maya! Đi ăn sáng không?", False, "text"),
    ("2024-05-03 09:29:00", "Maya Cohen", "bánh mì or café?", True, "text"),
    ("2024-05-03 09:30:00", "Maya Cohen", "the café on 5th, the one with the good croissants "
     "https://maps.example.com/cafe", True, "text"),  # a share with content: text + link
    ("2024-05-03 09:31:00", "Linh Nguyễn", "Reacted 👍 to your message ", False, "reaction"),
    ("2024-05-04 18:01:00", "Maya Cohen", "You unsent a message", True, "system"),
    ("2024-05-04 20:09:00", "Linh Nguyễn", "", False, "media"),  # photo
    ("2024-05-04 20:10:00", "Linh Nguyễn", "Tối nay đi ăn phở không?", False, "text"),
    ("2024-05-04 20:12:00", "Maya Cohen", "ngon quá! see you there 😂", True, "text"),
]


def test_messenger_thread_folder_two_files_mojibake_repaired():
    skipped = []
    msgs = read(FB_LINH, skipped=skipped)
    assert rows(msgs) == LINH
    assert {(m.chat, m.is_group) for m in msgs} == {("Linh Nguyễn", False)}
    assert {Path(m.source).name for m in msgs} == {"linhnguyen_1234"}  # the thread folder: one conversation
    assert [(Path(f).name, i) for f, i, _ in skipped] == [("message_1.json", 4)]
    # one file alone is just that file
    assert rows(read(FB_LINH / "message_2.json")) == LINH[:5]


def test_messenger_group_and_owner_from_every_thread():
    msgs = read(FB_GROUP / "message_1.json")
    assert {(m.chat, m.is_group) for m in msgs} == {("Climbers 🧗", True)}
    assert rows(msgs) == [
        ("2024-05-10 18:00:00", "Alex Kim", "Alex Kim named the group Climbers 🧗.", False, "system"),
        ("2024-05-10 18:02:00", "Alex Kim", "Bouldern am Samstag? Zoë kommt auch", False, "text"),
        ("2024-05-10 18:03:00", "Zoë Müller", "", False, "media"),
        ("2024-05-10 18:05:00", "Maya Cohen", "count me in", True, "text"),
    ]


def test_messenger_owner_needs_me_for_a_lone_group_thread(tmp_path):
    lone = tmp_path / "inbox" / "climbers_5678"
    shutil.copytree(FB_GROUP, lone)
    assert not any(m.from_me for m in read(lone))
    with pytest.raises(ChatExportError, match=r"--me.*'Alex Kim', 'Maya Cohen', 'Zoë Müller'"):
        read(lone, require_owner=True)
    assert [m.from_me for m in read(lone, me="Maya Cohen")] == [False, False, False, True]
    # the export's profile_information.json names the owner
    profile = tmp_path / "personal_information" / "profile_information" / "profile_information.json"
    profile.parent.mkdir(parents=True)
    profile.write_text(json.dumps({"profile_v2": {"name": {"full_name": "Maya Cohen"}}}), encoding="utf-8")
    assert [m.from_me for m in read(lone)] == [False, False, False, True]


def test_fix_mojibake_is_guarded():
    assert fix_mojibake({"a": ["cafÃ©", "ð\x9f\x98\x82"]}) == {"a": ["café", "😂"]}
    assert fix_mojibake("café") == "café" and fix_mojibake("Привет") == "Привет"


# ---------------------------------------------------------------- Discord

def test_discord_dm_me_inferred():
    skipped = []
    msgs = read(DC_DM, skipped=skipped)
    assert {(m.chat, m.is_group) for m in msgs} == {("alex", False)}
    assert rows(msgs) == [
        ("2024-05-20 19:00:00", "alex", "yo, ranked tonight?", False, "text"),
        ("2024-05-20 19:04:00", "Maya", "after dinner, like 9:30", True, "text"),
        ("2024-05-20 19:05:00", "alex", "", False, "media"),
        ("2024-05-20 19:06:00", "alex", "Started a call that lasted 5 minutes.", False, "system"),
        ("2024-05-20 19:07:00", "alex", "bring snacks", False, "text"),
        ("2024-05-20 19:08:00", "Maya", "deal 🍕", True, "text"),
    ]
    assert [i for _, i, _ in skipped] == [6]


def test_iso_timestamps_become_naive_local_time():
    from dataprocess.readers._common import local_from_iso

    assert local_from_iso("2024-05-20T21:00:00.1234567+02:00") == datetime(2024, 5, 20, 19, 0, 0, 123456)
    assert local_from_iso("2024-05-20T19:00:00Z") == datetime(2024, 5, 20, 19, 0)
    assert local_from_iso("2024-05-20T19:00:00") == datetime(2024, 5, 20, 19, 0)


def test_discord_server_channel_keeps_exchanges_with_me():
    with pytest.raises(ChatExportError, match=r"server channel.*--me.*'Bobby', 'Maya', 'carol'"):
        read(DC_SERVER, require_owner=True)
    whole = read(DC_SERVER)  # who I am unknown: the channel whole, as a group chat, nothing mine
    assert {(m.chat, m.is_group, m.from_me) for m in whole} == {("Climbing Club #general", True, False)}
    assert len(whole) > 6
    msgs = read(DC_SERVER, me="maya.c")
    assert [(m.chat, m.is_group, m.sender, m.text, m.from_me, m.kind) for m in msgs] == [
        ("Climbing Club #general · Bobby", False, "Bobby", "anyone selling a harness?", False, "text"),
        ("Climbing Club #general · Bobby", False, "Maya", "I have an old one, size M", True, "text"),
        ("Climbing Club #general · Bobby", False, "Bobby", "perfect, how much?", False, "text"),
        ("Climbing Club #general · Bobby", False, "Maya", "free, just pick it up", True, "text"),
        ("Climbing Club #general · carol", False, "Maya", "also: gym is closed monday", True, "text"),
        ("Climbing Club #general · carol", False, "carol", "thanks for the heads up!", False, "text"),
    ]
    assert [m.from_me for m in read(DC_SERVER, me="100000000000000001")] == [m.from_me for m in msgs]


# ---------------------------------------------------------------- iMessage chat.db

APPLE = 978307200


def typedstream(text: str) -> bytes:
    """An attributedBody blob as Messages writes it (NSAttributedString in a typedstream)."""
    data = text.encode("utf-8")
    length = bytes([len(data)]) if len(data) < 0x80 else b"\x81" + len(data).to_bytes(2, "little")
    return (b"\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@\x84\x84\x84\x12NSAttributedString\x00\x84\x84\x08NSObject"
            b"\x00\x85\x92\x84\x84\x84\x08NSString\x01\x94\x84\x01+" + length + data +
            b"\x86\x84\x02iI\x01\x05\x92\x84\x84\x84\x0cNSDictionary\x00\x94\x84\x01i\x01\x86\x86")


def apple(when: str, nanos: bool = True) -> int:
    seconds = int(datetime.fromisoformat(when).replace(tzinfo=timezone.utc).timestamp()) - APPLE
    return seconds * 1_000_000_000 if nanos else seconds


def build_chat_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL, country TEXT,
            service TEXT NOT NULL, uncanonicalized_id TEXT, person_centric_id TEXT);
        CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, style INTEGER,
            state INTEGER, account_id TEXT, chat_identifier TEXT, service_name TEXT, room_name TEXT,
            display_name TEXT, group_id TEXT);
        CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT,
            handle_id INTEGER DEFAULT 0, attributedBody BLOB, service TEXT, date INTEGER, date_read INTEGER,
            is_from_me INTEGER DEFAULT 0, item_type INTEGER DEFAULT 0, group_title TEXT,
            associated_message_guid TEXT, associated_message_type INTEGER DEFAULT 0,
            cache_has_attachments INTEGER DEFAULT 0);
        CREATE TABLE chat_message_join (chat_id INTEGER, message_id INTEGER, message_date INTEGER DEFAULT 0,
            PRIMARY KEY (chat_id, message_id));
        CREATE TABLE chat_handle_join (chat_id INTEGER, handle_id INTEGER, UNIQUE(chat_id, handle_id));
        INSERT INTO handle (ROWID, id, service) VALUES (1, '+14155550134', 'iMessage'),
            (2, 'noa@example.com', 'iMessage');
        INSERT INTO chat (ROWID, guid, style, chat_identifier, display_name) VALUES
            (1, 'iMessage;-;+14155550134', 45, '+14155550134', ''),
            (2, 'iMessage;+;chat123', 43, 'chat123', 'Book club'),
            (3, 'iMessage;+;chat456', 43, 'chat456', NULL);
        INSERT INTO chat_handle_join VALUES (1, 1), (2, 1), (2, 2), (3, 1), (3, 2);
    """)
    long_text = "שלום! " * 10 + "Привет, как дела? " * 5
    rows_ = [  # ROWID, text, handle, body, date, from_me, item_type, assoc, attachment, chat
        (1, "are we still on for tonight?", 1, None, apple("2024-02-01 18:00:00", nanos=False), 0, 0, 0, 0, 1),
        (2, None, 0, typedstream("yes! 7pm at the usual place"), apple("2024-02-01 18:02:00"), 1, 0, 0, 0, 1),
        (3, None, 1, typedstream(long_text), apple("2024-02-01 18:03:00"), 0, 0, 0, 0, 1),
        (4, "Loved “yes! 7pm at the usual place”", 1, None, apple("2024-02-01 18:04:00"), 0, 0, 2000, 0, 1),
        (5, "\ufffc", 1, None, apple("2024-02-01 18:05:00"), 0, 0, 0, 1, 1),
        (6, "\ufffcsee this", 0, None, apple("2024-02-01 18:06:00"), 1, 0, 0, 1, 1),
        (7, "who's reading what?", 2, None, apple("2024-02-02 09:00:00"), 0, 0, 0, 0, 2),
        (8, "Dune, again", 0, None, apple("2024-02-02 09:01:00"), 1, 0, 0, 0, 2),
        (9, None, 0, None, apple("2024-02-02 09:02:00"), 1, 2, 0, 0, 2),
        (10, "hi both", 2, None, apple("2024-02-03 10:00:00"), 0, 0, 0, 0, 3),
        (11, None, 1, b"garbage", "not a date", 0, 0, 0, 0, 1),
    ]
    for rowid, text, handle, body, date, me, item, assoc, att, chat in rows_:
        db.execute("INSERT INTO message (ROWID, guid, text, handle_id, attributedBody, date, is_from_me, item_type, "
                   "associated_message_type, cache_has_attachments) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (rowid, f"g{rowid}", text, handle, body, date, me, item, assoc, att))
        db.execute("INSERT INTO chat_message_join VALUES (?, ?, 0)", (chat, rowid))
    db.commit()
    db.close()
    return path


def test_imessage_db_attributed_body_dates_groups_tapbacks(tmp_path):
    path = build_chat_db(tmp_path / "chat.db")
    before = path.stat().st_mtime_ns
    assert detect_format(path) == "imessage-db"
    skipped = []
    msgs = read(path, me="Maya", skipped=skipped)
    long_text = ("שלום! " * 10 + "Привет, как дела? " * 5).strip()
    assert [(m.chat, m.is_group) + r for m, r in zip(msgs, rows(msgs))] == [
        ("+14155550134", False, "2024-02-01 18:00:00", "+14155550134", "are we still on for tonight?", False, "text"),
        ("+14155550134", False, "2024-02-01 18:02:00", "Maya", "yes! 7pm at the usual place", True, "text"),
        ("+14155550134", False, "2024-02-01 18:03:00", "+14155550134", long_text, False, "text"),
        ("+14155550134", False, "2024-02-01 18:04:00", "+14155550134", "Loved “yes! 7pm at the usual place”",
         False, "reaction"),
        ("+14155550134", False, "2024-02-01 18:05:00", "+14155550134", "\ufffc", False, "media"),
        ("+14155550134", False, "2024-02-01 18:06:00", "Maya", "see this", True, "text"),
        ("Book club", True, "2024-02-02 09:00:00", "noa@example.com", "who's reading what?", False, "text"),
        ("Book club", True, "2024-02-02 09:01:00", "Maya", "Dune, again", True, "text"),
        ("Book club", True, "2024-02-02 09:02:00", "Maya", "", True, "system"),
        ("+14155550134, noa@example.com", True, "2024-02-03 10:00:00", "noa@example.com", "hi both", False, "text"),
    ]
    assert [(f, i) for f, i, _ in skipped] == [(str(path), 11)]
    assert path.stat().st_mtime_ns == before  # opened read-only


def test_decode_attributed_body():
    assert decode_attributed_body(typedstream("héllo 👋")) == "héllo 👋"
    assert decode_attributed_body(typedstream("x" * 300)) == "x" * 300
    assert decode_attributed_body(b"no string here") is None and decode_attributed_body(None) is None


# ---------------------------------------------------------------- detection and errors

def test_detect_every_format(tmp_path):
    csv = tmp_path / "messages.csv"
    csv.write_text("Timestamp,Readable Time,Sender,Sender ID,Message,Group Chat,Group Chat Name,Sent by Me,To\n")
    expected = {
        csv: "imessage", build_chat_db(tmp_path / "chat.db"): "imessage-db",
        TG_CHAT: "telegram", TG_ACCOUNT: "telegram", FB_LINH: "messenger",
        FB_LINH / "message_2.json": "messenger", FB_GROUP / "message_1.json": "messenger",
        DC_DM: "discord", DC_SERVER: "discord",
        **{path: "whatsapp" for path in WA.iterdir() if path.is_file()},
    }
    assert {p: detect_format(p) for p in expected} == expected
    assert set(FORMATS) == {"auto", "imessage", "imessage-db", "whatsapp", "telegram", "messenger", "discord",
                            "discord-package"}
    assert list(READERS) == list(FORMATS[1:])


def test_unknown_binary_and_wrongly_forced_inputs_are_refused(tmp_path):
    blob = tmp_path / "photo.jpg"
    blob.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    with pytest.raises(ChatExportError, match="unrecognised export format"):
        read(blob)
    with pytest.raises(ChatExportError, match="not UTF-8"):
        read(blob, fmt="whatsapp")
    with pytest.raises(ChatExportError, match="no WhatsApp message lines"):
        read(TG_CHAT, fmt="whatsapp")
    with pytest.raises(ChatExportError, match="not a valid Telegram export"):
        read(WA / "WhatsApp Chat with Alex.txt", fmt="telegram")
    with pytest.raises(ChatExportError, match="Messages database"):
        read(WA / "WhatsApp Chat with Alex.txt", fmt="imessage-db")
    with pytest.raises(ChatExportError, match="not a Messenger or Instagram thread folder.*nor a Discord data package"):
        read(tmp_path)
    with pytest.raises(ChatExportError, match="a folder, not a whatsapp export"):
        read(FB_LINH, fmt="whatsapp")
    empty_zip = tmp_path / "WhatsApp Chat - X.zip"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(ChatExportError, match="unrecognised"):
        read(empty_zip)
    with pytest.raises(ChatExportError, match="without a WhatsApp chat"):
        read(empty_zip, fmt="whatsapp")
    # forcing a format that fits works like detection
    assert rows(read(DC_DM, fmt="discord")) == rows(read(DC_DM))


def test_cli_refuses_an_export_that_needs_me(tmp_path):
    from twin_cli import main

    group = tmp_path / "trip.txt"
    group.write_text("13/07/2024, 10:00 - Ann: hi\n13/07/2024, 10:01 - Bo: hey\n13/07/2024, 10:02 - Cy: yo\n")
    result = CliRunner().invoke(main, ["process", str(group), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "--me" in result.output and "'Ann', 'Bo', 'Cy'" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- through the pipeline

def test_pipeline_makes_reply_pairs_from_whatsapp_and_telegram(tmp_path):
    inputs = [WA / "WhatsApp Chat with Alex.txt", WA / "Chat de WhatsApp con Linh.txt", TG_CHAT, TG_ACCOUNT,
              FB_LINH, DC_DM]
    result = run_process(inputs, Workspace(tmp_path), me="Maya")
    examples = [json.loads(line) for split in ("train", "valid", "test")
                for line in (tmp_path / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    chats = {ex["conversation"].rsplit("#", 1)[0] for ex in examples}
    # WhatsApp's and Telegram's "Alex" stay two conversations, named after their files
    assert {"Alex (WhatsApp Chat with Alex.txt)", "Alex (result.json)", "Linh", "Дима", "Linh Nguyễn",
            "alex"} <= chats, chats
    replies = {ex["completion"][0]["content"] for ex in examples}
    assert any("saturday works" in r for r in replies)          # WhatsApp
    assert any("после шести" in r for r in replies)              # Telegram, Russian intact
    assert any("bánh mì" in r for r in replies)                  # Messenger, Vietnamese repaired
    assert any("הכל טוב, תודה" in r for r in replies)            # WhatsApp, Hebrew intact
    assert result.skipped and all(isinstance(line, int) for _, line, _ in result.skipped)


# ---------------------------------------------------------------- Telegram: more shapes

TG_NO_PERSONAL = FIXTURES / "telegram" / "account_no_personal" / "result.json"
TG_MINIMAL = FIXTURES / "telegram" / "minimal" / "result.json"


def test_telegram_account_without_personal_information_owner_in_every_personal_chat():
    assert detect_format(TG_NO_PERSONAL) == "telegram"
    msgs = read(TG_NO_PERSONAL, require_owner=True)
    assert [(m.chat, m.sender, m.text, m.from_me, m.is_group) for m in msgs] == [
        ("Omar", "Omar", "salut, tu passes ce soir ?", False, False),
        ("Omar", "Léa", "oui, vers 20h", True, False),
        ("Yuki", "Léa", "おはよう Yuki!", True, False),
        ("Yuki", "Yuki", "おはよう！", False, False),
        ("Book club", "Omar", "chapter 3 for friday?", False, True),
        ("Book club", "Léa", "deal", True, True),
        ("Old group I never wrote in", "Yuki", "hello?", False, True),  # I never wrote there
    ]


def test_telegram_minimal_export_with_only_messages():
    assert detect_format(TG_MINIMAL) == "telegram"
    assert not any(m.from_me for m in read(TG_MINIMAL))  # no ids, no chat name: nobody is known to be me
    with pytest.raises(ChatExportError, match=r"--me.*'Léa', 'Omar'"):
        read(TG_MINIMAL, require_owner=True)
    msgs = read(TG_MINIMAL, me="LÉA")  # case ignored
    assert [(m.sender, m.text, m.from_me, m.is_group) for m in msgs] == [
        ("Omar", "are you up?", False, False), ("Léa", "yes, barely", True, False), ("Omar", "coffee in 10?", False, False)]
    assert msgs[0].timestamp == datetime(2024, 6, 1, 10, 0)


# ---------------------------------------------------------------- Discord: partitions, --me who never wrote

def test_discord_me_who_never_wrote_in_a_channel_still_reads_and_the_run_goes_on(tmp_path):
    channel = json.loads(DC_SERVER.read_text(encoding="utf-8"))
    channel["messages"] = [m for m in channel["messages"] if m["author"]["name"] != "maya.c"]
    quiet = tmp_path / "Climbing Club - general [1].json"
    quiet.write_text(json.dumps(channel), encoding="utf-8")
    msgs = read(quiet, me="maya.c", require_owner=True)  # no error: I simply did not write there
    assert msgs and not any(m.from_me for m in msgs)
    result = run_process([quiet, DC_DM], Workspace(tmp_path / "ws"), me="Maya")  # the run goes on
    assert sum(result.counts.values()) > 0


def test_discord_partitions_of_one_channel_are_one_chat(tmp_path):
    channel = json.loads(DC_DM.read_text(encoding="utf-8"))
    messages = channel["messages"]
    for part, chunk in enumerate((messages[:3], messages[3:]), 1):
        channel["messages"] = chunk
        (tmp_path / f"Direct Messages - alex [200000000000000001] [part {part}].json").write_text(
            json.dumps(channel), encoding="utf-8")
    parts = sorted(tmp_path.glob("*.json"))
    msgs = [m for path in parts for m in read(path)]
    assert {(m.chat, m.source) for m in msgs} == {("alex", str(tmp_path / "Direct Messages - alex [200000000000000001].json"))}


# ---------------------------------------------------------------- --me as the user types it

def test_me_matching_ignores_case_unicode_form_tilde_and_invisible_marks(tmp_path):
    from dataprocess.readers.base import same_person

    assert same_person("Chloé", "chloe\u0301") and same_person("ＭＡＹＡ", "maya")  # NFC, NFKC
    assert same_person("~\u202fAlex Kim", "alex kim") and same_person("\u200eAlex\u202fKim", "Alex Kim")
    assert not same_person("Alex", "Alexa") and not same_person("", "")
    path = tmp_path / "trip.txt"
    path.write_text(f"[01/07/2024, 10:00:00] ~\u202fJosé: hola\n[01/07/2024, 10:01:00] {LRM}Ann: hi\n"
                    "[01/07/2024, 10:02:00] Bo: yo\n", encoding="utf-8")
    assert [m.from_me for m in read(path, me="jose\u0301", require_owner=True)] == [True, False, False]


# ---------------------------------------------------------------- Telegram Desktop's HTML export

TG_HTML = FIXTURES / "telegram" / "html_chat"
HTML_ROWS = [
    ("2024-05-05 16:00:00", "Nadia", "hey! are we still on for tonight?", False, "text"),
    ("2024-05-05 16:00:40", "Nadia", "the place on\nRue Oberkampf", False, "text"),  # a "joined" message
    ("2024-05-05 16:04:10", "Élise", "yes!! see the menu 😋", True, "text"),
    ("2024-05-05 16:05:00", "Nadia", "", False, "media"),  # a photo
    ("2024-05-06 07:30:00", "Nadia", "Free concert tonight at 9", False, "media"),  # forwarded
    ("2024-05-06 07:41:00", "Élise", "I'm in, 8:30 at the metro?", True, "text"),
]


def test_telegram_html_export_folder_and_pages(tmp_path):
    assert detect_format(TG_HTML) == "telegram" and detect_format(TG_HTML / "messages2.html") == "telegram"
    skipped = []
    msgs = read(TG_HTML, skipped=skipped)
    assert rows(msgs) == HTML_ROWS  # times from "UTC+02:00" titles, converted to (UTC) local time
    assert {(m.chat, m.is_group, m.source) for m in msgs} == {("Nadia", False, str(TG_HTML))}
    assert [(Path(f).name, i) for f, i, _ in skipped] == [("messages2.html", 3)]  # "not a date"
    assert rows(read(TG_HTML / "messages.html")) == HTML_ROWS[:4]  # one page alone
    # the whole-account HTML export: chats/chat_NNN/messages*.html
    account = tmp_path / "Telegram Desktop" / "DataExport_2024-05-07"
    shutil.copytree(TG_HTML, account / "chats" / "chat_001")
    assert detect_format(account) == "telegram" and rows(read(account)) == HTML_ROWS

"""Hostile and broken files: each gives one clear ChatExportError, and through `twin process`
exit status 2, one line, no traceback and nothing written. The files are generated here."""
from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataprocess import ChatExportError, read_export
from dataprocess.readers import base
from helpers.reading import both_ways_of_reading  # noqa: F401 (autouse: every test twice)

FIXTURES = Path(__file__).parents[1] / "fixtures"
TG_CHAT = FIXTURES / "telegram" / "chat_dima" / "result.json"
CSV_HEADER = "Timestamp,Readable Time,Sender,Sender ID,Message,Group Chat,Group Chat Name,Sent by Me,To\n"


def process(path: Path, workspace: Path, *extra: str):
    from twin_cli import main

    return CliRunner().invoke(main, ["process", str(path), "--workspace", str(workspace), "--me", "Maya", *extra])


def assert_refused(path: Path, tmp_path: Path, match: str, *extra: str) -> None:
    with pytest.raises(ChatExportError, match=match):
        list(read_export(path, me="Maya", fmt=extra[1] if extra else None))
    workspace = tmp_path / "ws"
    result = process(path, workspace, *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (workspace / "data").exists() or not any((workspace / "data").iterdir())


def test_imessage_timestamp_1e20_is_a_skipped_row_not_an_overflow(tmp_path):
    path = tmp_path / "messages.csv"
    path.write_text(CSV_HEADER + "1e20,,Alex,,hi,No,,No,\n", encoding="utf-8")
    skipped = []
    assert list(read_export(path, skipped=skipped)) == [] and skipped[0][1] == 2
    result = process(path, tmp_path / "ws")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "ws" / "data").exists()


def test_imessage_field_of_200_kb_is_one_skipped_row(tmp_path):
    path = tmp_path / "messages.csv"
    path.write_text(CSV_HEADER + "2024-01-01 09:59:00,,Alex,,before,No,,No,\n"
                    "2024-01-01 10:00:00,,Alex,,\"" + "x" * 200_000 + "\",No,,No,\n"
                    "2024-01-01 10:01:00,,Alex,,after,No,,No,\n", encoding="utf-8")
    skipped = []
    assert [m.text for m in read_export(path, skipped=skipped)] == ["before", "after"]
    assert [(line, "field larger than field limit" in why) for _, line, why in skipped] == [(3, True)]


def test_deeply_nested_json(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"name": "A", "type": "personal_chat", "id": 1, "messages": ' + "[" * 200_000
                    + "]" * 200_000 + "}", encoding="utf-8")
    assert_refused(path, tmp_path, "nested deeper")
    for fmt in ("discord", "messenger"):
        with pytest.raises(ChatExportError, match="nested deeper|not a"):
            list(read_export(path, fmt=fmt))


def test_truncated_json(tmp_path):
    path = tmp_path / "result.json"
    data = TG_CHAT.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    assert_refused(path, tmp_path, "truncated Telegram export")


def test_random_bytes(tmp_path):
    path = tmp_path / "export.txt"
    path.write_bytes(random.Random(0).randbytes(100_000))
    assert_refused(path, tmp_path, "unrecognised export format")
    for fmt, match in (("whatsapp", "not UTF-8"), ("telegram", "not a valid Telegram export"),
                       ("imessage", "not .*iMessage|not UTF-8"), ("discord", "not a valid"),
                       ("imessage-db", "Messages database")):
        with pytest.raises(ChatExportError, match=match):
            list(read_export(path, fmt=fmt))


def test_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    path = tmp_path / "WhatsApp Chat - Alex.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_chat.txt", "01/07/2024, 10:00 - Alex: hi\n" + "a" * 20_000_000)
    assert path.stat().st_size < 200_000
    assert_refused(path, tmp_path, "zip bomb")


def test_zip_member_declaring_too_much_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "WhatsApp Chat - Alex.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("_chat.txt", "01/07/2024, 10:00 - Alex: hi\n" * 1000)
    monkeypatch.setattr(base, "MAX_ZIP_MEMBER_BYTES", 10_000)
    with pytest.raises(ChatExportError, match="inflates to .* GiB"):
        list(read_export(path, me="Maya"))


def test_a_giant_line(tmp_path):
    path = tmp_path / "WhatsApp Chat with Alex.txt"
    path.write_text("01/07/2024, 10:00 - Alex: hi\n01/07/2024, 10:01 - Maya: " + "y" * (base.MAX_LINE_CHARS + 10),
                    encoding="utf-8")
    assert_refused(path, tmp_path, "a line longer than")


def test_a_giant_csv_line(tmp_path):
    path = tmp_path / "messages.csv"
    path.write_text(CSV_HEADER + "2024-01-01 10:00:00,,Alex,,hi" + "," * (base.MAX_LINE_CHARS + 10), encoding="utf-8")
    assert_refused(path, tmp_path, "a line longer than")


def test_an_endless_message_is_skipped_not_held(tmp_path):
    path = tmp_path / "WhatsApp Chat with Alex.txt"
    with open(path, "w", encoding="utf-8") as out:
        out.write("01/07/2024, 10:00 - Alex: hi\n01/07/2024, 10:01 - Maya: long\n")
        out.write(("z" * 99 + "\n") * 2000)  # 200 KB of continuation lines
        out.write("01/07/2024, 10:02 - Alex: ok\n")
    skipped = []
    assert [m.text for m in read_export(path, me="Maya", skipped=skipped)] == ["hi", "ok"]
    assert skipped[0][1] == 2 and "over 65,536 characters" in skipped[0][2]


def test_a_message_over_the_cap_in_json_is_skipped(tmp_path):
    chat = json.loads(TG_CHAT.read_text(encoding="utf-8"))
    chat["messages"][1]["text"] = "w" * (base.MAX_MESSAGE_CHARS + 1)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(chat, ensure_ascii=False), encoding="utf-8")
    skipped = []
    texts = [m.text for m in read_export(path, skipped=skipped)]
    assert all(len(t) <= base.MAX_MESSAGE_CHARS for t in texts) and 1 in [where for _, where, _ in skipped]

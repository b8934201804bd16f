"""JSON exports are streamed: Messenger's message_N.json files are never loaded whole (same
messages, same order as the whole-file reader gave), and one huge JSON value is refused before
ijson builds it. The large files are generated here."""
from __future__ import annotations

import io
import json
import random
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataprocess import ChatExportError, read_export
from dataprocess.readers import _common, messenger

FIXTURES = Path(__file__).parents[1] / "fixtures"
INBOX = FIXTURES / "messenger" / "your_activity" / "messages" / "inbox"
FB_LINH = INBOX / "linhnguyen_1234"
TG_CHAT = FIXTURES / "telegram" / "chat_dima" / "result.json"
DC_DM = FIXTURES / "discord" / "dm_alex.json"
BIG_STRING = 50_000_000


def rows(messages):
    return [(m.timestamp, m.sender, m.text, m.from_me, m.kind, m.chat, m.is_group, m.source) for m in messages]


def whole_file_order(folder: Path) -> list[tuple[str, int]]:
    """(file, index) of every message as the whole-file reader ordered them: files from the highest
    N down, each file's messages sorted by timestamp_ms (stable: ties in file order)."""
    def key(msg):
        try:
            return float(msg["timestamp_ms"])
        except (KeyError, TypeError, ValueError):
            return float("-inf")

    files = sorted(folder.glob("message_*.json"), key=lambda p: int(p.stem.split("_")[1]), reverse=True)
    order = []
    for file in files:
        messages = json.loads(file.read_text(encoding="utf-8"))["messages"]
        order += [(file.name, i) for i, _ in sorted(enumerate(messages), key=lambda item: key(item[1]))]
    return order


def write_thread(folder: Path, stamps_by_file: dict[int, list]) -> None:
    """A thread whose every message's content names its file and index."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, stamps in stamps_by_file.items():
        messages = [{"sender_name": "Maya Cohen" if i % 2 else "Linh Nguy\u00e1\u00bb\u0085n",
                     "content": f"m{number}-{i} caf\u00c3\u00a9", **({} if t is None else {"timestamp_ms": t})}
                    for i, t in enumerate(stamps)]
        data = {"participants": [{"name": "Linh Nguy\u00e1\u00bb\u0085n"}, {"name": "Maya Cohen"}],
                "messages": messages, "title": "Linh Nguy\u00e1\u00bb\u0085n", "thread_type": "Regular"}
        (folder / f"message_{number}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")


def read_order(folder: Path, skipped: list | None = None) -> list[tuple[str, int]]:
    found = []
    for m in read_export(folder, fmt="messenger", me="Maya Cohen", skipped=skipped):
        number, index = m.text.split()[0][1:].split("-")
        found.append((f"message_{number}.json", int(index)))
    return found


# ---------------------------------------------------------------- Messenger, streamed

def test_oldest_first_file_gives_the_same_rows_as_facebooks_newest_first(tmp_path):
    """The fixture thread, and the same thread with each file's messages written oldest first (the
    path that streams without sorting): the same messages, kinds, repairs and order."""
    flipped = tmp_path / "inbox" / "linhnguyen_1234"
    flipped.mkdir(parents=True)
    for file in FB_LINH.glob("message_*.json"):
        data = json.loads(file.read_text(encoding="utf-8"))
        stamped = [m for m in data["messages"] if isinstance(m.get("timestamp_ms"), int)]
        unstamped = [m for m in data["messages"] if not isinstance(m.get("timestamp_ms"), int)]
        data["messages"] = unstamped + stamped[::-1]
        (flipped / file.name).write_text(json.dumps(data), encoding="utf-8")
    assert not messenger._scan(FB_LINH / "message_2.json")["ascending"]
    assert messenger._scan(flipped / "message_2.json")["ascending"]
    original = rows(read_export(FB_LINH, me="Maya Cohen"))
    assert [r[2] for r in original][:3] == ["", "Chào Maya! Đi ăn sáng không?", "bánh mì or café?"]
    assert [(r[:5]) for r in rows(read_export(flipped, me="Maya Cohen"))] == [r[:5] for r in original]


@pytest.mark.parametrize("order", ["newest first", "oldest first", "shuffled, with ties and no times"])
def test_order_across_files_is_the_whole_file_readers(tmp_path, order):
    rnd = random.Random(7)
    newer = [2_000_000 + 1000 * i for i in range(40)]
    older = [1_000_000 + 1000 * i for i in range(40)]
    if order == "newest first":
        newer, older = newer[::-1], older[::-1]
    elif order != "oldest first":
        newer = [rnd.choice(newer[:8]) for _ in newer] + [None, "not a time", 2_000_000.5]
        older = older + older[:5] + [None]
        rnd.shuffle(newer)
        rnd.shuffle(older)
    folder = tmp_path / "inbox" / "linh_1"
    write_thread(folder, {1: newer, 2: older})
    skipped = []
    found = read_order(folder, skipped)
    left_out = {(Path(file).name, index) for file, index, _ in skipped}
    assert found == [place for place in whole_file_order(folder) if place not in left_out]
    assert len(left_out) == (3 if order.startswith("shuffled") else 0)  # no time, "not a time"
    assert read_order(folder / "message_2.json") == [place for place in whole_file_order(folder)
                                                     if place[0] == "message_2.json" and place not in left_out]


def test_the_external_sort_merges_many_runs_in_several_passes(tmp_path, monkeypatch):
    """Tiny runs and fan-in force spooled runs and more than one merge pass."""
    monkeypatch.setattr(messenger, "_RUN", 3)
    monkeypatch.setattr(messenger, "_FAN_IN", 2)
    monkeypatch.setattr(messenger, "_BLOCK", 7)  # a record straddles every buffer refill
    rnd = random.Random(3)
    stamps = [rnd.randrange(30) * 1000 for _ in range(200)]  # many ties
    folder = tmp_path / "inbox" / "linh_1"
    write_thread(folder, {1: stamps})
    passes = []
    real_write = messenger._write_run
    monkeypatch.setattr(messenger, "_write_run", lambda *a: passes.append(1) or real_write(*a))
    assert read_order(folder) == whole_file_order(folder)
    assert len(passes) > 200 // 3  # spooled, and merged again
    # the content and its repair survive the spool
    assert {m.text.split()[1] for m in read_export(folder, fmt="messenger")} == {"café"}


def test_a_50_mb_messenger_file_is_read_in_a_few_mb(tmp_path):
    """Facebook's order (newest first) goes through the spooled sort; memory stays far below the
    file's size (the whole-file reader peaked at about three times it)."""
    path = tmp_path / "inbox" / "linh_1" / "message_1.json"
    path.parent.mkdir(parents=True)
    body = json.dumps("caf\u00c3\u00a9 " + "lorem ipsum dolor sit amet " * 150)[1:-1]
    count = 12_500
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"participants": [{"name": "Linh"}, {"name": "Maya"}], "messages": [\n')
        for i in range(count):
            out.write(f'{"," if i else ""}{{"sender_name": "{"Maya" if i % 2 else "Linh"}", '
                      f'"timestamp_ms": {1_700_000_000_000 - i * 1000}, "content": "{i} {body}"}}\n')
        out.write('], "title": "Linh", "thread_type": "Regular"}')
    size = path.stat().st_size
    assert size > 50_000_000
    tracemalloc.start()
    try:
        seen = [int(m.text.split(" ", 1)[0]) for m in read_export(path, me="Maya")]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == list(range(count - 1, -1, -1))  # oldest first: the file's last message first
    assert peak < size // 4, f"peak {peak:,} bytes reading a {size:,}-byte file"


def test_participants_and_profile_name_are_read_from_parser_events(tmp_path):
    inbox = tmp_path / "messages" / "inbox"
    for name, other in (("a_1", "Alex Kim"), ("b_2", "Zoë Müller")):
        write_thread(inbox / name, {1: [1000, 2000]})
        data = json.loads((inbox / name / "message_1.json").read_text(encoding="utf-8"))
        data["participants"] = [{"name": other}, {"name": "Maya Cohen"}, {"name": "Linh"}]
        (inbox / name / "message_1.json").write_text(json.dumps(data), encoding="utf-8")
    (inbox / "c_3").mkdir()
    (inbox / "c_3" / "message_1.json").write_text("{not json", encoding="utf-8")  # unreadable: passed over
    assert messenger._names_in(inbox / "a_1" / "message_1.json") == ["Alex Kim", "Maya Cohen", "Linh"]
    assert messenger._in_every_thread(inbox / "a_1") is None  # Maya and Linh are in both
    profile = tmp_path / "profile_information" / "profile_information.json"
    profile.parent.mkdir()
    profile.write_text(json.dumps({"profile_v2": {"name": {"full_name": "Maya Coh\u00c3\u00a9n"}}}), encoding="utf-8")
    assert messenger._profile_name(inbox / "a_1") == "Maya Cohén"


# ---------------------------------------------------------------- one huge JSON value

def guarded(data: bytes, chunk: int) -> bytes:
    """Everything read through the guard, ``chunk`` bytes at a time."""
    guard = _common._QuoteGuard(io.BytesIO(data), Path("x.json"), "Test")
    out = []
    while part := guard.read(chunk):
        out.append(part)
    return b"".join(out)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16])
def test_the_guard_counts_from_the_last_unescaped_quote_across_chunks(monkeypatch, chunk):
    """Bound 20: 18-byte strings pass, with escapes and backslashes at every chunk boundary; a
    stretch of 60 bytes without a string quote does not (the bound holds give or take one read)."""
    monkeypatch.setattr(_common, "MAX_JSON_STRING_BYTES", 20)
    fine = (b'{"a": "' + b"x" * 18 + b'", "b": ["' + b"y" * 18 + b'", "\\\\"], "c": "' + b'\\"' * 9 + b'", '
            + b'"d": ["\\\\", "\\\\", "\\\\", "\\\\", "\\\\", "\\\\", "\\\\"]}')
    json.loads(fine)
    assert guarded(fine, chunk) == fine
    for hostile in (b'["' + b"x" * 60 + b'"]',          # a long string
                    b'["a", ' + b"1" * 60 + b"]",        # a long number
                    b'["' + b'\\"' * 30 + b'"]',         # escaped quotes are inside the string
                    b'{"a":' + b" " * 60 + b'"b"}'):     # a long run of whitespace
        with pytest.raises(ChatExportError, match=r"^x\.json: a JSON value longer than \d+ MiB \(no Test export"):
            guarded(hostile, chunk)


def test_a_long_string_under_the_bound_is_a_skipped_message_not_a_refusal(tmp_path):
    chat = json.loads(TG_CHAT.read_text(encoding="utf-8"))
    chat["messages"][1]["text"] = "w" * (_common.MAX_JSON_STRING_BYTES - 100)  # just under the bound
    path = tmp_path / "result.json"
    path.write_text(json.dumps(chat), encoding="utf-8")
    skipped = []
    texts = [m.text for m in read_export(path, skipped=skipped)]
    assert len(texts) > 5 and 1 in [where for _, where, _ in skipped]


def test_a_string_just_over_the_bound_is_refused(tmp_path):
    """Fast, so that a broken guard fails here before the 50 MB files below make ijson crawl."""
    chat = json.loads(TG_CHAT.read_text(encoding="utf-8"))
    chat["messages"][1]["text"] = "w" * (_common.MAX_JSON_STRING_BYTES + _common._JSON_BUFFER + 1)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(chat), encoding="utf-8")
    with pytest.raises(ChatExportError, match="a JSON value longer than 1 MiB"):
        list(read_export(path))


def process(path: Path, workspace: Path, *extra: str):
    from twin_cli import main

    return CliRunner().invoke(main, ["process", str(path), "--workspace", str(workspace), "--me", "Maya", *extra])


def _with_huge_string(fixture: Path, index: int, field: str, out: Path) -> Path:
    """A copy of a JSON fixture with one message's ``field`` made BIG_STRING characters long."""
    export = json.loads(fixture.read_text(encoding="utf-8"))
    export["messages"][index][field] = "w" * BIG_STRING
    out.write_text(json.dumps(export), encoding="utf-8")
    return out


def huge_telegram(tmp_path: Path) -> Path:
    return _with_huge_string(TG_CHAT, 1, "text", tmp_path / "result.json")


def huge_discord(tmp_path: Path) -> Path:
    return _with_huge_string(DC_DM, 0, "content", tmp_path / "dm.json")


def huge_messenger(tmp_path: Path, text: str | None = None) -> Path:
    thread = json.loads((FB_LINH / "message_2.json").read_text(encoding="utf-8"))
    thread["messages"][-1]["content"] = "w" * BIG_STRING if text is None else text
    path = tmp_path / "inbox" / "linh_1" / "message_1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(thread), encoding="utf-8")
    return path


@pytest.mark.parametrize("make, what", [(huge_telegram, "Telegram"), (huge_discord, "DiscordChatExporter"),
                                        (huge_messenger, "Messenger")])
def test_a_50_mb_string_is_refused_before_it_is_built(tmp_path, make, what):
    path = make(tmp_path)
    assert path.stat().st_size > BIG_STRING
    tracemalloc.start()
    try:
        with pytest.raises(ChatExportError, match=f"a JSON value longer than 1 MiB \\(no {what} export"):
            list(read_export(path, me="Maya"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * _common.MAX_JSON_STRING_BYTES  # the 50 MB string was never built
    workspace = tmp_path / "ws"
    result = process(path, workspace)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "longer than 1 MiB" in result.output
    assert not (workspace / "data").exists() or not any((workspace / "data").iterdir())


def test_a_50_mb_string_of_escaped_quotes_is_refused_too(tmp_path):
    """Written ``\\"\\"\\"...``: full of quote bytes, none of which ends the string."""
    path = huge_messenger(tmp_path, '"' * (BIG_STRING // 2))
    assert b'"\\"\\"\\"' in path.read_bytes()[:5000]
    with pytest.raises(ChatExportError, match="a JSON value longer than 1 MiB"):
        list(read_export(path, me="Maya"))

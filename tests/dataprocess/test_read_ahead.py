"""dataprocess.read_ahead and its use by twin process: the exports read in a forked child give
the messages, skipped records and notes read in place; a reader's error comes through as
itself, after the messages before it; a child that dies or a caller that stops early leaves no
process behind; twin process writes the same files either way, its charts drawn on both cores."""
import json
import multiprocessing
import os

import pytest
from click.testing import CliRunner

from core.workspace import Workspace
from dataprocess import forked, pipeline
from dataprocess.errors import BackgroundWorkError, ChatExportError
from dataprocess.message import Message
from dataprocess.read_ahead import input_bytes, read_ahead
from dataprocess.readers import read_export
from helpers.paths import SAMPLE_CSV

CSV_HEADER = "Timestamp,Readable Time,Sender,Sender ID,Message,Group Chat,Group Chat Name,Sent by Me,To\n"


@pytest.fixture(autouse=True)
def two_cores(monkeypatch):
    """Fork as on any machine with a second core (where there is one core, reading is in place)."""
    assert forked.can_fork()
    monkeypatch.setattr(forked, "usable_cores", lambda: 2)
    monkeypatch.setattr("dataprocess.read_ahead.usable_cores", lambda: 2)


@pytest.fixture
def odd_inputs(tmp_path):
    """The sample, an iMessage CSV with a row that cannot be read, and a WhatsApp export with a
    byte that is not UTF-8: messages, a skipped record and a note."""
    bad_row = tmp_path / "messages.csv"
    bad_row.write_text(CSV_HEADER + "2024-01-01 09:59:00,,Alex,,before,No,,No,\n"
                       "1e20,,Alex,,lost,No,,No,\n2024-01-01 10:01:00,,Alex,,after,No,,No,\n", encoding="utf-8")
    whatsapp = tmp_path / "WhatsApp Chat with Noa.txt"
    whatsapp.write_bytes("[03/02/2024, 10:00:00] Noa: hey\n[03/02/2024, 10:01:00] Maya: hi \xff there\n"
                         .encode("latin-1"))
    return [SAMPLE_CSV, bad_row, whatsapp]


def _read(paths, skipped, notes):
    return lambda: (message for path in paths
                    for message in read_export(path, me="Maya", skipped=skipped, notes=notes))


def test_read_aside_gives_what_is_read_in_place(odd_inputs):
    results = {}
    for parallel in (False, True):
        skipped, notes = [("before", 0, "kept")], []
        messages = list(read_ahead(_read(odd_inputs, skipped, notes), (skipped, notes), parallel=parallel))
        results[parallel] = messages, skipped, notes
    in_place, aside = results[False], results[True]
    assert len(in_place[0]) > 3000 and in_place[1][1:] and in_place[2]   # messages, a skipped row, a note
    assert aside == in_place
    assert all(type(message) is Message for message in aside[0])
    assert not multiprocessing.active_children()


def _three_then(error):
    def stream():
        for number in range(3):
            yield Message("Noa", f"message {number}", None, "Noa", False)
        raise error
    return stream


def test_a_readers_error_comes_through_as_itself_after_the_messages_before_it():
    got = []
    with pytest.raises(ChatExportError, match=r"^refused: not an export$"):
        for message in read_ahead(_three_then(ChatExportError("refused: not an export"))):
            got.append(message.text)
    assert got == ["message 0", "message 1", "message 2"]
    assert not multiprocessing.active_children()


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


def test_an_error_that_does_not_travel_still_says_what_it_was():
    with pytest.raises(BackgroundWorkError, match="_Unpicklable: half an emoji"):
        list(read_ahead(_three_then(_Unpicklable("half an emoji"))))


def test_a_child_that_dies_is_an_error_not_a_hang():
    def dies():
        yield Message("Noa", "hi", None, "Noa", False)
        os._exit(3)

    with pytest.raises(BackgroundWorkError, match="ended unexpectedly"):
        list(read_ahead(dies))
    assert not multiprocessing.active_children()


def test_a_caller_that_stops_early_ends_the_child():
    def endless():
        while True:
            yield Message("Noa", "again", None, "Noa", False)

    messages = read_ahead(endless)
    assert next(messages).text == "again"
    assert multiprocessing.active_children()   # reading aside
    messages.close()
    assert not multiprocessing.active_children()


def test_input_bytes_counts_files_and_folders_and_nothing_for_the_rest(tmp_path):
    folder = tmp_path / "inbox" / "thread"
    folder.mkdir(parents=True)
    (folder / "message_1.json").write_bytes(b"x" * 100)
    (tmp_path / "a.txt").write_bytes(b"y" * 10)
    os.mkfifo(tmp_path / "fifo.txt")
    assert input_bytes([tmp_path / "inbox", tmp_path / "a.txt", tmp_path / "fifo.txt", tmp_path / "gone"]) == 110


def _process_with(monkeypatch, tmp_path, inputs, name, read_ahead_bytes):
    monkeypatch.setattr(pipeline, "READ_AHEAD_BYTES", read_ahead_bytes)
    monkeypatch.setattr(pipeline, "FORK_AFTER", read_ahead_bytes)   # the counting (and the early charts) aside too
    drawn = tmp_path / f"drawn-{name}.txt"
    original = pipeline.write_charts

    def spy(report, out_dir, names=pipeline.CHARTS):
        with open(drawn, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {' '.join(names)}\n")
        return original(report, out_dir, names)

    monkeypatch.setattr(pipeline, "write_charts", spy)
    workspace = Workspace(tmp_path / name)
    result = pipeline.run_process(inputs, workspace, me="Maya")
    return workspace, result, [line.split(" ", 1) for line in drawn.read_text(encoding="utf-8").splitlines()]


def test_twin_process_writes_the_same_files_reading_aside_or_in_place(odd_inputs, tmp_path, monkeypatch):
    in_place, result_in_place, drawn_in_place = _process_with(monkeypatch, tmp_path, odd_inputs, "in-place", 10**12)
    aside, result_aside, drawn_aside = _process_with(monkeypatch, tmp_path, odd_inputs, "aside", 0)
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "seen.npy", "memory.json"):
        assert (aside.data_dir / name).read_bytes() == (in_place.data_dir / name).read_bytes(), name
    report_in_place = json.loads((in_place.data_dir / "report.json").read_text(encoding="utf-8"))
    report_aside = json.loads((aside.data_dir / "report.json").read_text(encoding="utf-8"))
    assert report_aside["skipped_records"] == report_in_place["skipped_records"] == 1
    assert report_aside["notes"] == report_in_place["notes"] and report_aside["notes"]
    report_aside.pop("inputs"), report_in_place.pop("inputs")
    assert report_aside == report_in_place
    # every chart, listed in one order; the activity and timing charts drawn in the counting child
    assert [path.name for path in result_aside.charts] == list(pipeline.CHARTS)
    assert [path.name for path in result_in_place.charts] == list(pipeline.CHARTS)
    assert all(path.is_file() and path.stat().st_size > 1000 for path in result_aside.charts)
    assert {int(pid) != os.getpid() for pid, names in drawn_aside if names == "activity.png timing.png"} == {True}
    assert {int(pid) for pid, _ in drawn_in_place} == {os.getpid()}


def test_a_refused_file_read_aside_is_one_line_and_nothing_written(tmp_path, monkeypatch):
    from twin_cli import main

    monkeypatch.setattr(pipeline, "READ_AHEAD_BYTES", 0)
    truncated = tmp_path / "result.json"
    truncated.write_text('{"name": "Dima", "type": "personal_chat", "id": 1, "messages": [{"id": 1, ',
                         encoding="utf-8")
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(main, ["process", str(SAMPLE_CSV), str(truncated), "--workspace", str(workspace)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "result.json" in result.output
    assert not (workspace / "data").exists() or not any((workspace / "data").iterdir())
    assert not multiprocessing.active_children()


def test_an_update_read_aside_drops_what_was_processed_as_in_place(odd_inputs, tmp_path, monkeypatch):
    """twin update's path (only messages not in the index pass): the same new and duplicate
    counts and the same new examples, read aside or in place."""
    from dataprocess.seen import SEEN_FILE, SeenIndex

    first = Workspace(tmp_path / "first")
    pipeline.run_process([SAMPLE_CSV], first, me="Maya", make_charts=False)
    seen = SeenIndex.load(first.data_dir / SEEN_FILE)
    results = {}
    for name, threshold in (("in-place", 10**12), ("aside", 0)):
        monkeypatch.setattr(pipeline, "READ_AHEAD_BYTES", threshold)
        workspace = Workspace(tmp_path / f"update-{name}")
        result = pipeline.run_process(odd_inputs, workspace, me="Maya", make_charts=False, seen=seen, persona="Maya")
        results[name] = (result.stats["new_messages"], result.stats["duplicate_messages"],
                         (workspace.data_dir / "train.jsonl").read_bytes(),
                         (workspace.data_dir / SEEN_FILE).read_bytes())
    assert results["aside"] == results["in-place"]
    new, duplicates = results["aside"][:2]
    assert duplicates > 3000 and 0 < new < 10   # the sample again: all processed; the two small files: new


def test_ctrl_c_while_reading_aside_stops_both_processes_and_writes_nothing(tmp_path):
    """SIGINT to the terminal's process group (what Ctrl-C sends) while a long export is read in
    the child: exit status 130, one line, no workspace, no process left, no spooled examples."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    export = tmp_path / "WhatsApp Chat with Noa.txt"
    line = "[03/02/2024, 10:{:02d}:00] {}: message number {} of a long chat\n"
    with open(export, "w", encoding="utf-8") as out:
        for number in range(400_000):   # ~24 MB: read aside
            out.write(line.format(number % 60, "Noa" if number % 2 else "Maya", number))
    workspace = tmp_path / "ws"
    twin = Path(sys.executable).with_name("twin")
    env = dict(os.environ, TMPDIR=str(tmp_path), TQDM_DISABLE="1")
    proc = subprocess.Popen([str(twin), "process", str(export), "--workspace", str(workspace), "--me", "Maya"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:   # until the reading child is there
        children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")   # Linux's list of a process's children
        children = children_file.read_text().split() if children_file.exists() else []
        if children:
            break
        time.sleep(0.1)
    assert children, "no child process was started"
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and output.strip().splitlines() == [
        "Error: interrupted: nothing was written; run the same command again"], output
    assert not workspace.exists()
    assert not any(tmp_path.glob("twin-examples-*"))
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]

"""dataprocess.forked and its use by twin process: the reply figures counted in a forked child
are the ones counted in place; a failing child is an error, not a hang; duplicates come out."""
import json
import os
import pickle

import pytest

from core.workspace import Workspace
from dataprocess import forked, pipeline
from core.errors import TwinError
from dataprocess.errors import BackgroundWorkError
from dataprocess.forked import ForkedCall, can_fork
from dataprocess.report import PrunedCounter, ReplyStats
from helpers.paths import SAMPLE_CSV, SAMPLE_FACTS


@pytest.fixture(autouse=True)
def two_cores(monkeypatch):
    """Fork as on any machine with a second core (where there is one core, the calls run in place)."""
    assert can_fork()   # Linux and macOS have it: a forked child is what these tests are about
    monkeypatch.setattr(forked, "usable_cores", lambda: 2)


def _pid_and(value):
    return os.getpid(), value * 2


def _fails():
    raise ValueError("bad row")


def test_the_call_runs_in_another_process_and_returns_its_result():
    with ForkedCall(_pid_and, 21) as call:
        assert call.forked
        pid, value = call.result()
    assert value == 42 and pid != os.getpid()
    assert not call.forked   # the child is gone once its result is in


def test_in_place_when_not_worth_a_process():
    call = ForkedCall(_pid_and, 5, parallel=False)
    assert not call.forked
    assert call.result() == (os.getpid(), 10)


def test_a_failing_child_raises_here_as_twins_one_line_error():
    with ForkedCall(_fails) as call, pytest.raises(BackgroundWorkError, match="ValueError: bad row") as caught:
        call.result()
    assert isinstance(caught.value, TwinError) and not isinstance(caught.value, RuntimeError)


def test_a_child_that_dies_is_an_error_not_a_hang():
    with ForkedCall(os._exit, 3) as call, pytest.raises(BackgroundWorkError, match="ended unexpectedly"):
        call.result()


def test_a_dead_child_through_twin_process_is_one_line_and_nothing_written(tmp_path, monkeypatch):
    """The forked reply counter dies: the CLI prints one line (no traceback), exits 1, writes no split."""
    from click.testing import CliRunner

    from dataprocess.cli import process_command

    monkeypatch.setattr(pipeline, "FORK_AFTER", 1)
    monkeypatch.setattr(pipeline, "count_replies", lambda *args: os._exit(3))
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(process_command, [str(SAMPLE_CSV), "--workspace", str(workspace)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "ended unexpectedly" in result.output
    assert not (workspace / "data" / "train.jsonl").exists()


def test_reply_stats_travel_whole_through_pickle():
    stats = ReplyStats()
    for reply in ["ok lol", "ok see you", "lol"] * 3:
        stats.add(reply)   # still in the buffer: pickling counts it first
    copy = pickle.loads(pickle.dumps(stats))
    assert copy.words == stats.words and copy.bigrams == stats.bigrams and copy.lengths == stats.lengths
    assert isinstance(copy.words, PrunedCounter) and copy.words.capacity == stats.words.capacity


def test_subtracting_duplicates_leaves_the_figures_of_the_rest():
    everything, duplicates, rest = ReplyStats(), ReplyStats(), ReplyStats()
    for reply in ["ok lol", "see you soon", "ok lol", "lol"]:
        everything.add(reply)
    duplicates.add("ok lol")
    for reply in ["ok lol", "see you soon", "lol"]:
        rest.add(reply)
    everything.subtract(duplicates)
    assert everything.words == rest.words and everything.bigrams == rest.bigrams
    assert everything.lengths == rest.lengths


def test_twin_process_report_is_the_same_counted_aside_or_in_place(tmp_path, monkeypatch):
    copy = tmp_path / "copy" / SAMPLE_CSV.name
    copy.parent.mkdir()
    copy.write_bytes(SAMPLE_CSV.read_bytes())
    reports = {}
    original = pipeline.ForkedCall.__init__
    for name, threshold in (("in place", 10**9), ("forked", 0)):
        monkeypatch.setattr(pipeline, "FORK_AFTER", threshold)
        calls = []

        def spy(self, *args, **kwargs):
            original(self, *args, **kwargs)
            calls.append(self.forked)

        monkeypatch.setattr(pipeline.ForkedCall, "__init__", spy)
        workspace = Workspace(tmp_path / name.replace(" ", "-"))
        pipeline.run_process([SAMPLE_CSV, copy], workspace, facts_path=SAMPLE_FACTS, make_charts=False)
        assert calls == [name == "forked"]
        reports[name] = json.loads((workspace.data_dir / "report.json").read_text(encoding="utf-8"))
        assert reports[name]["timing"]["reply_latency_s"]["count"] > 0, name   # measured on either core
    # the sample and a copy: every example of the copy is a duplicate, taken back out
    assert reports["forked"]["messages"]["dropped_duplicate"] > 0
    for key in ("reply_chars", "top_words", "top_bigrams", "examples", "messages", "timing"):
        assert reports["forked"][key] == reports["in place"][key], key

"""`twin chat`: a terminal conversation with the twin, stdin piped in (CliRunner and a real subprocess)."""
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import server.chat
from core.settings import Rules, Sampling
from server.cli import Served
from helpers.server import ScriptedBackend
from twin_cli import main


def served(backend, **kwargs):
    return lambda *a, **k: Served(backend, "maya", kwargs.get("rules", Rules()), kwargs.get("sampling", Sampling()))


def test_chat_keeps_history_prints_messages_resets_and_quits(monkeypatch, tmp_path):
    scripted = ScriptedBackend(["yeah | bar", "taco? DO", "NE junk"])
    monkeypatch.setattr(server.chat, "load", served(scripted))
    result = CliRunner().invoke(main, ["chat", "--model", "x.gguf"],
                                input="Tacos?\n\nwhen\n/reset\n/what\nhi\n/quit\nnever sent\n")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines.count("maya> yeah") == 3 and lines.count("maya> bartaco?") == 3
    assert "(conversation reset)" in result.output and "unknown command /what" in result.output
    assert "DONE" not in result.output and lines[-1] == "bye"
    prompts = [[m["content"] for m in call[0][1:]] for call in scripted.calls]
    assert prompts == [["tacos?"], ["tacos?", "yeah | bartaco?", "when"], ["hi"]]  # kept, then reset


def test_chat_history_is_bounded(monkeypatch):
    scripted = ScriptedBackend(["ok"])
    monkeypatch.setattr(server.chat, "load", served(scripted))
    result = CliRunner().invoke(main, ["chat", "--model", "x.gguf", "--turns", "2"], input="a\nb\nc\n")
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "bye"  # Ctrl-D (end of input) leaves
    assert [m["content"] for m in scripted.calls[-1][0][1:]] == ["b", "ok", "c"]


def test_chat_on_tiny_gguf_in_a_subprocess(tiny_gguf):
    twin = Path(sys.executable).with_name("twin")
    run = subprocess.run([str(twin), "chat", "--model", str(tiny_gguf), "--threads", "1", "--max-tokens", "8",
                          "--persona", "maya"], input="hello, how are you?\nwant tacos?\n", capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("maya> ") >= 2 and "DONE" not in run.stdout and run.stdout.rstrip().endswith("bye")
    assert "Traceback" not in run.stderr


def test_chat_missing_model_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["chat", "--model", str(tmp_path / "none.gguf")])
    assert result.exit_code == 2 and "model file not found" in result.output and "Traceback" not in result.output


def test_chat_cleans_like_training_uses_the_twins_sampling_and_never_prints_an_empty_reply(monkeypatch):
    scripted = ScriptedBackend(replies=[[" DONE"], ["ok | ", "sure DONE"]])
    monkeypatch.setattr(server.chat, "load", served(scripted, sampling=Sampling(temperature=0.2, max_tokens=9)))
    result = CliRunner().invoke(main, ["chat", "--model", "x.gguf"], input="CHECK https://x.example/a 😀\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:3] == ["maya> ok", "maya> sure"]  # the empty first try was not shown
    assert scripted.calls[0][0][-1]["content"] == "check link"
    assert scripted.calls[0][1] == {"temperature": 0.2, "max_tokens": 9}
    always_empty = ScriptedBackend([" DONE"])
    monkeypatch.setattr(server.chat, "load", served(always_empty))
    result = CliRunner().invoke(main, ["chat", "--model", "x.gguf", "--temperature", "1"], input="hi\n")
    assert "no reply in 3 tries" in result.output and len(always_empty.calls) == 3
    assert always_empty.calls[0][1]["temperature"] == 1.0

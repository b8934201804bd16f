"""`twin process` shows its progress on a terminal, and keeps a log (no terminal) clean."""
from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

from helpers.paths import SAMPLE_CSV, SAMPLE_FACTS

TWIN = [str(Path(sys.executable).with_name("twin"))]


def _run(argv: list[str], on_terminal: bool) -> tuple[int, str]:
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    if not on_terminal:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        return done.returncode, done.stdout + done.stderr
    primary, secondary = os.openpty()   # the child's stdout and stderr are a terminal
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a new pty is 0x0
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_the_examples_stage_shows_progress_on_a_terminal_only(tmp_path):
    argv = TWIN + ["process", str(SAMPLE_CSV), "--workspace"]
    code, shown = _run(argv + [str(tmp_path / "tty")], on_terminal=True)
    assert code == 0, shown
    assert "making examples: 0 examples" in shown   # the bar starts at once (later: the count, chat i/n)
    code, logged = _run(argv + [str(tmp_path / "log")], on_terminal=False)
    assert code == 0, logged
    assert "making examples" not in logged and "examples: train" in logged


def test_the_bar_says_when_it_waits_for_the_model_that_ranks_facts(tmp_path):
    argv = TWIN + ["process", str(SAMPLE_CSV), "--facts", str(SAMPLE_FACTS), "--workspace", str(tmp_path / "tty")]
    code, shown = _run(argv, on_terminal=True)
    assert code == 0, shown
    assert "loading the model that ranks facts by meaning" in shown
    code, shown = _run(argv[:-1] + [str(tmp_path / "off"), "--facts-per-prompt", "0"], on_terminal=True)
    assert code == 0, shown
    assert "loading the model" not in shown   # no ranking, no model

"""What the bot tests share (no tests, no fixtures here): the token, the known [timing], and
the real `twin bot` process run against a stand-in (tests/bot/standin.py, discord_standin.py)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core.settings import Timing

HELLO = "hello, how are you?"
TOKEN = "987654:TEST-secret-token-xyz"
TWIN = Path(sys.executable).with_name("twin")
# constant delays: latency 2 s, gaps 2 s, a contact's gaps 0.8 s (debounce), typing too fast to matter
TIMING = Timing(replies=10, reply_latency_s=(2.0, 2.0, 2.0), burst_gap_s=(2.0, 2.0, 2.0),
                contact_gap_s=(0.8, 0.8, 0.8), contact_burst_s=(0.0, 1.0, 2.0), parts_per_reply=2.0,
                typing_chars_per_s=1000.0)


class BotRun:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process, self.log_path = process, log

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_bot(api, workspace: Path, tmp_path: Path, *args: str, token: str = TOKEN, platform: str = "telegram"):
    """`twin bot PLATFORM` against the stand-in ``api`` until the block ends (then Ctrl-C: it must
    stop cleanly, with no token in its output). ``workspace``: a workspace, or a GGUF for --model."""
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    log = tmp_path / f"bot-{len(list(tmp_path.glob('bot-*.log')))}.log"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    since = time.monotonic()
    identified = getattr(api, "identified", 0)
    with open(log, "w") as out:
        model = ["--model", str(workspace)] if workspace.is_file() else ["--workspace", str(workspace)]
        process = subprocess.Popen([str(TWIN), "bot", platform, *model, "--api-url", api.url,
                                    "--token-file", str(token_file), "--threads", "1", *args],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    run = BotRun(process, log)
    try:
        if platform == "telegram":
            started = api.wait_for(lambda calls: any(c.method == "getUpdates" and c.at > since for c in calls) or
                                   process.poll() is not None, 120)
        else:
            started = api.wait_for(lambda: api.identified > identified or process.poll() is not None, 120)
        assert started and process.poll() is None, run.log
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert process.returncode == 0, run.log
    assert "stopped" in run.log
    assert token not in run.log and token.split(":")[1] not in run.log


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# The sender's name in both stand-ins ("Alex", "alex"): the prompt's contact, lowercased by the rules.
CONTACT = "Alex"



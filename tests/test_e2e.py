"""End to end on the real embedded default model, through the `twin` command as a user runs it:
process the bundled sample -> train a few steps -> export Q8_0 -> serve -> curl /generate."""
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.paths import SAMPLE_CSV, SAMPLE_FACTS

pytestmark = pytest.mark.e2e
# The console script installed beside this interpreter, as a user runs it.
TWIN = [str(Path(sys.executable).with_name("twin"))]


def run(*args, timeout=900):
    result = subprocess.run([*TWIN, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"twin {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pipeline_on_default_model(tmp_path):
    ws = tmp_path / "ws"
    run("process", str(SAMPLE_CSV), "--facts", str(SAMPLE_FACTS), "--workspace", str(ws))
    run("train", "--workspace", str(ws), "--max-steps", "4", "--save-steps", "2")
    assert (ws / "adapter" / "adapter_model.safetensors").is_file()
    assert (ws / "adapter" / "checkpoints" / "checkpoint-4").is_dir()
    exported = run("export", "--workspace", str(ws), "--quant", "Q8_0")
    gguf = ws / "model" / "twin-Q8_0.gguf"
    assert gguf.is_file() and gguf.stat().st_size > 50_000_000
    assert "agree" in exported.stdout.lower()

    port = free_port()
    server = subprocess.Popen([*TWIN, "serve", "--workspace", str(ws), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            if subprocess.run(["curl", "-sf", f"{url}/health"], capture_output=True).returncode == 0:
                break
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)
        # The README's request, sent with curl.
        reply = subprocess.run(["curl", "-sS", "-X", "POST", f"{url}/generate", "-H", "Content-Type: application/json",
                                "-d", '{"text": "hello, how are you?"}'], capture_output=True, text=True, timeout=120)
        body = json.loads(reply.stdout)
        assert isinstance(body["response"], str) and isinstance(body["messages"], list)
        assert "DONE" not in body["response"]
        assert body["messages"] == [p.strip() for p in body["response"].split("|") if p.strip()]
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = server.stdout.read()
    assert "hello, how are you" not in log  # no message text in logs by default

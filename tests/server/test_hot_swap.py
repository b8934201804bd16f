"""server.hot_swap + server.backends.SwappableBackend: a real server on loopback swaps models
while 4 clients keep asking (0 failed requests), requests in flight finish on the old model,
the old one is closed once idle, a broken new file leaves the old one serving, SIGHUP reloads."""
import json
import os
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from helpers.server import ScriptedBackend, running
from server.app import create_app
from server.backends import LlamaCppBackend, SwappableBackend
from server.hot_swap import ModelReloader

CLIENTS = 4


def _post(url, body, timeout=60):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Closing(LlamaCppBackend):
    """The real llama.cpp backend, noting when it is closed (and whether a request was running)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.closed = threading.Event()

    def close(self):
        self.closed.set()
        super().close()


class ScriptedClosing(ScriptedBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.closed = threading.Event()
        self.running = 0

    def _pieces(self, messages, decoding, stats):
        self.running += 1
        try:
            yield from super()._pieces(messages, decoding, stats)
        finally:
            self.running -= 1

    def close(self):
        assert self.running == 0, "closed while a request was still running on it"
        self.closed.set()


@pytest.fixture(scope="module")
def two_ggufs(tiny_gguf, tmp_path_factory):
    """The session's tiny GGUF and a second tiny model of other weights (its greedy replies differ)."""
    from export.gguf_writer import write_gguf
    from helpers.tiny import build_tiny_model

    other = build_tiny_model(tmp_path_factory.mktemp("tiny-llama-2"), seed=7)
    return tiny_gguf, write_gguf(other, tmp_path_factory.mktemp("tiny-gguf-2") / "twin-F16.gguf", "F16")


def _greedy(backend, text="hello, how are you?"):
    from dataprocess.template import prompt_messages
    from voice.replies import complete

    return complete(backend, prompt_messages("maya", text), temperature=0, max_tokens=8).text


def test_swap_under_four_clients_fails_no_request(two_ggufs, tmp_path):
    first, second = two_ggufs
    model_dir = tmp_path / "ws" / "model"
    model_dir.mkdir(parents=True)
    served_file = model_dir / "twin-F16.gguf"
    shutil.copy(first, served_file)
    old = Closing(served_file, threads=1, context=512)
    expected_old = _greedy(old)
    probe = LlamaCppBackend(second, threads=1, context=512)
    expected_new = _greedy(probe)
    probe.close()
    assert expected_old != expected_new  # the two models can be told apart by their replies

    swappable = SwappableBackend(old)
    app = create_app(swappable, persona="maya", rate_limit=None)
    loaded = []

    def load():
        backend = Closing(served_file, threads=1, context=512)
        loaded.append(backend)
        return backend, app.extensions["twin"].sampling

    reloader = ModelReloader(swappable, load, lambda: served_file, interval=0.05).start()
    statuses, replies, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            status, body = _post(f"{url}/generate", {"text": "hello, how are you?", "temperature": 0, "max_tokens": 8})
            statuses.append(status)
            replies.append(body.get("response"))

    try:
        with running(app, threads=8) as url:
            clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
            [c.start() for c in clients]
            deadline = time.monotonic() + 60
            while len(statuses) < 8 and time.monotonic() < deadline:
                time.sleep(0.02)
            # what `twin export` does: the new GGUF written under a hidden name, renamed into place
            staged = model_dir / ".twin-F16.gguf.new"
            shutil.copy(second, staged)
            os.replace(staged, served_file)
            while not (loaded and old.closed.is_set()) and time.monotonic() < deadline:
                time.sleep(0.02)
            after = len(statuses)
            while len(statuses) < after + 8 and time.monotonic() < deadline:
                time.sleep(0.02)
            stop.set()
            [c.join() for c in clients]
    finally:
        reloader.stop()
    assert statuses and set(statuses) == {200}, f"failed requests: {[s for s in statuses if s != 200]}"
    assert reloader.reloads == 1 and old.closed.is_set() and swappable.current is loaded[0]
    assert replies[0] == expected_old and replies[-1] == expected_new
    assert set(replies) <= {expected_old, expected_new}
    loaded[0].close()


def test_a_request_in_flight_finishes_on_the_old_model(tmp_path):
    old = ScriptedClosing(pieces=["old ", "reply ", "here", " DONE"], delay=0.15)
    new = ScriptedClosing(pieces=["new one DONE"])
    swappable = SwappableBackend(old)
    app = create_app(swappable, persona="maya", rate_limit=None)
    with running(app) as url:
        result = {}
        slow = threading.Thread(target=lambda: result.update(first=_post(f"{url}/generate", {"text": "hi"})))
        slow.start()
        deadline = time.monotonic() + 10
        while not old.running and time.monotonic() < deadline:
            time.sleep(0.005)
        assert old.running  # the request is generating on the old model now
        swappable.swap(new)
        assert not old.closed.is_set()  # not while its request runs
        second = _post(f"{url}/generate", {"text": "hi"})
        slow.join()
    assert result["first"] == (200, result["first"][1]) and result["first"][1]["response"] == "old reply here"
    assert second[0] == 200 and second[1]["response"] == "new one"
    assert old.closed.is_set() and not new.closed.is_set()


def test_idle_old_model_is_closed_at_once_and_a_dropped_stream_releases_it():
    old, new = ScriptedClosing(pieces=["a", "b", " DONE"]), ScriptedClosing()
    swappable = SwappableBackend(old)
    stream = swappable.stream([{"role": "user", "content": "hi"}])
    assert next(stream) == "a"
    swappable.swap(new)
    assert not old.closed.is_set()
    stream.close()  # a client that went away mid-reply
    assert old.closed.is_set()
    newer = ScriptedClosing()
    swappable.swap(newer)
    assert new.closed.is_set() and swappable.current is newer


def test_a_broken_new_file_keeps_the_old_model_serving(two_ggufs, tmp_path):
    first, _ = two_ggufs
    path = tmp_path / "twin-F16.gguf"
    shutil.copy(first, path)
    old = ScriptedClosing(pieces=["still here DONE"])
    swappable = SwappableBackend(old)

    def load():
        return LlamaCppBackend(path, threads=1, context=512), None

    reloader = ModelReloader(swappable, load, lambda: path)
    path.write_bytes(b"not a gguf at all")
    assert reloader.reload() is False and reloader.failures == 1
    assert swappable.current is old and not old.closed.is_set()
    assert swappable.generate([{"role": "user", "content": "hi"}]).text.startswith("still here")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reloads(tmp_path):
    old, new = ScriptedClosing(), ScriptedClosing(pieces=["new DONE"])
    swappable = SwappableBackend(old)
    swapped = []
    reloader = ModelReloader(swappable, lambda: (new, "sampling"), None, on_swap=swapped.append)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert reloader.install_signal()
        reloader.start()
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not swapped and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        reloader.stop()
        signal.signal(signal.SIGHUP, previous)
    assert swapped == ["sampling"] and swappable.current is new and old.closed.is_set()


def test_twin_serve_swaps_to_a_newer_workspace_gguf(two_ggufs, tmp_path, monkeypatch):
    """The command's own wiring: `twin serve --workspace` (waitress replaced by a recorder)."""
    import waitress
    from click.testing import CliRunner

    from core.settings import Persona, Settings
    from core.workspace import Workspace
    from twin_cli import main

    first, second = two_ggufs
    ws = tmp_path / "ws"
    (ws / "model").mkdir(parents=True)
    shutil.copy(first, ws / "model" / "twin-F16.gguf")
    Workspace(ws).save_settings(Settings(persona=Persona("maya")))
    calls = []
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: calls.append(app))
    previous = signal.getsignal(signal.SIGHUP) if hasattr(signal, "SIGHUP") else None
    result = CliRunner().invoke(main, ["serve", "--workspace", str(ws), "--threads", "1", "--workers", "1",
                                       "--parallel", "1"])
    assert result.exit_code == 0, result.output
    app = calls[-1]
    reloader = app.extensions["twin.reloader"]
    try:
        client = app.test_client()
        ask = {"text": "hello, how are you?", "temperature": 0, "max_tokens": 8}
        before = client.post("/generate", json=ask).get_json()["response"]
        staged = ws / "model" / ".twin-F16.gguf.new"
        shutil.copy(second, staged)
        os.replace(staged, ws / "model" / "twin-F16.gguf")
        deadline = time.monotonic() + 30
        while reloader.reloads == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = client.post("/generate", json=ask).get_json()["response"]
    finally:
        reloader.stop()
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)
        app.extensions["twin"].backend.close()
    assert reloader.reloads == 1 and before != after

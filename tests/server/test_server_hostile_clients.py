"""One bad client never costs the others (issue 20), against a real `twin serve` on loopback (the
tests' tiny GGUF through llama.cpp) and the same server in-process where the prompt is looked at:

* a lone surrogate escape in any text field of a JSON body is mended to U+FFFD, never a 500;
* a body over the limit sent whole before the answer is read (urllib) gets the JSON 413, not a reset;
* 150 sockets that never send a request do not keep a real client waiting for their timeout.
"""
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers.server import ScriptedBackend, running

from server import http_server
from server.app import create_app
from server.http_server import waitress_limits

TWIN = Path(sys.executable).with_name("twin")
CONNECTIONS = 100  # twin serve's default --connections
IDLE = 150


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def twin_serve(tiny_gguf, tmp_path_factory):
    """`twin serve --model tiny.gguf` as its own process; yields its URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(TWIN), "serve", "--model", str(tiny_gguf), "--port", str(port), "--threads", "1",
                                    "--parallel", "1", "--no-reload", "--connections", str(CONNECTIONS),
                                    "--feedback-db", str(log.with_name("feedback.sqlite"))],
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text()


def _post(url, path, body, timeout=60):
    data = body if isinstance(body, bytes) else body.encode()
    request = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.headers["Content-Type"], json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.loads(exc.read())


# What browsers' JSON.stringify writes for a string cut in the middle of an emoji: "\ud83d".
SURROGATE_BODIES = [
    ("/generate", r'{"text": "hey \ud800 there", "max_tokens": 4}'),
    ("/generate", (r'{"text": "hi", "max_tokens": 4, "history": [{"role": "user", "content": "a\udc00"}, '
                   r'{"role": "assistant", "content": "b\ud83d"}]}')),
    ("/generate", r'{"text": "hi", "max_tokens": 4, "contact": "bo\ud800b"}'),
    ("/v1/chat/completions", r'{"max_tokens": 4, "messages": [{"role": "user", "content": "hey \ud800"}]}'),
    ("/v1/chat/completions", (r'{"max_tokens": 4, "messages": [{"role": "user", '
                              r'"content": [{"type": "text", "text": "hey \ud83d"}]}]}')),
]


@pytest.mark.parametrize("path,body", SURROGATE_BODIES)
def test_a_lone_surrogate_is_answered_not_500(twin_serve, path, body):
    status, kind, reply = _post(twin_serve, path, body)
    assert status == 200, reply
    assert kind == "application/json"
    assert reply["id"]


def test_a_lone_surrogate_in_a_stream_and_in_feedback(twin_serve):
    request = urllib.request.Request(
        twin_serve + "/v1/chat/completions",
        br'{"stream": true, "max_tokens": 4, "messages": [{"role": "user", "content": "hey \ud800"}]}',
        {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        events = reply.read().decode()
    assert events.rstrip().endswith("data: [DONE]") and '"error"' not in events
    _, _, made = _post(twin_serve, "/generate", '{"text": "hi", "max_tokens": 4}')
    assert _post(twin_serve, "/feedback", r'{"id": "reply-\ud800", "rating": 1}')[:2] == (404, "application/json")
    rated = _post(twin_serve, "/feedback", json.dumps({"id": made["id"], "rating": "up"}))
    assert rated[0] == 201, rated


def test_the_twin_hears_u_fffd_in_place_of_the_broken_half():
    backend = ScriptedBackend(["hi"])
    app = create_app(backend, persona="maya")
    with running(app) as url:
        for path, body in SURROGATE_BODIES:
            assert _post(url, path, body)[0] == 200
    heard = [" ".join(m["content"] for m in messages) for messages, _ in backend.calls]
    assert "hey \ufffd there" in heard[0]
    assert "a\ufffd" in heard[1] and "b\ufffd" in heard[1]
    assert "hey \ufffd" in heard[3] and "hey \ufffd" in heard[4]
    assert not any(0xD800 <= ord(c) <= 0xDFFF for text in heard for c in text)
    assert "\U0001F600" in json.dumps(_mended(r'{"text": "\ud83d\ude00"}'), ensure_ascii=False)  # a pair stays


def _mended(body: str):
    from flask import Flask

    from server.schema import json_body

    with Flask(__name__).test_request_context(data=body, content_type="application/json"):
        return json_body("{}")


def test_an_oversized_body_sent_whole_gets_the_json_413_every_time(twin_serve):
    body = json.dumps({"text": "x" * (2 << 20)}).encode()  # 2 MiB, sent before the answer is read
    for _ in range(3):
        assert _post(twin_serve, "/generate", body) == (413, "application/json",
                                                        {"error": "request body larger than 64 KiB"})
    assert _post(twin_serve, "/generate", '{"text": "hi", "max_tokens": 4}')[0] == 200  # still serving


def _is_open(sock) -> bool:
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_idle_sockets_do_not_keep_a_real_client_waiting(twin_serve):
    host, port = twin_serve.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(IDLE)]
    try:
        for sock in idle:
            sock.setblocking(False)
        time.sleep(1.0)  # the server has taken up every one it will
        status, _, reply = _post(twin_serve, "/generate", '{"text": "hi", "max_tokens": 4}', timeout=120)
        still_open = [_is_open(sock) for sock in idle]
    finally:
        for sock in idle:
            sock.close()
    assert status == 200 and reply["messages"] is not None
    # The answer came while the idle sockets were open: made room for, not waited out. Waiting
    # for their timeout (waitress alone) frees the CONNECTIONS first ones before the request is
    # taken up, leaving at most IDLE - CONNECTIONS + 2 open; here only as many as were needed to
    # make room were closed, and the oldest ones.
    assert sum(still_open) >= CONNECTIONS - 5 > IDLE - CONNECTIONS + 2
    first_open = still_open.index(True)
    assert all(still_open[first_open:]), "the connections closed for room are the oldest"


def test_a_request_head_is_due_within_the_deadline_and_keep_alive_is_not(monkeypatch):
    monkeypatch.setattr(http_server, "HEAD_TIMEOUT_S", 0.5)
    with running(create_app(ScriptedBackend(["hi"]), persona="maya"), **waitress_limits(connections=20)) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=10)
        slow.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        kept = socket.create_connection((host, int(port)), timeout=10)
        body = b'{"text": "hi"}'
        kept.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        assert slow.recv(65536) == b""  # closed by the server once the deadline passed
        kept.setblocking(False)
        assert _is_open(kept)  # a connection that sent a request is kept alive (channel_timeout)
        slow.close()
        kept.close()

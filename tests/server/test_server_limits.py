"""Hard limits at the server, against a real waitress with `twin serve`'s settings on loopback:
bodies over the limit (declared or chunked) are refused while being read, never buffered whole."""
import json
import shutil
import socket
import subprocess
import time

import pytest

from server.app import MAX_BODY_BYTES, create_app
from server.cli import waitress_limits
from helpers.server import ScriptedBackend, running


@pytest.fixture(scope="module")
def server():
    backend = ScriptedBackend(["hi"])
    with running(create_app(backend, persona="maya"), **waitress_limits(connections=20)) as url:
        yield backend, url


def _connect(url):
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setblocking(False)
    return sock


def _read_reply(sock, wait=0.0) -> bytes:
    end, data = time.monotonic() + wait, b""
    while True:
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        except BlockingIOError:
            if time.monotonic() >= end:
                return data
            time.sleep(0.01)
        except ConnectionError:
            return data


def test_a_2_mb_chunked_body_is_refused_while_it_is_read(server):
    backend, url = server
    calls = len(backend.calls)
    sock = _connect(url)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"x" * 16384
    sent, reply = 0, b""
    while sent < 2 * 1024 * 1024 and not reply:
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        except (BlockingIOError, ConnectionError):
            pass
        reply = _read_reply(sock, 0.005)
    reply += _read_reply(sock, 1.0)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 1024 * 1024  # refused after about the limit, long before the 2 MB were sent
    assert len(backend.calls) == calls  # the app never got it


def test_a_declared_2_mb_body_is_refused_before_it_is_sent(server):
    backend, url = server
    sock = _connect(url)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2097152\r\n\r\n")
    reply = _read_reply(sock, 2.0)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_a_body_just_under_the_limit_still_gets_the_apps_json_answer(server):
    _, url = server
    body = json.dumps({"text": "hi", "pad": "x" * (MAX_BODY_BYTES - 100)}).encode()
    assert len(body) < MAX_BODY_BYTES
    sock = _connect(url)
    sock.setblocking(True)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    sock.setblocking(False)
    reply = _read_reply(sock, 5.0)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_curl_sees_the_same(server, tmp_path):
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test (apt-get install curl)"
    _, url = server
    big = tmp_path / "big.json"
    big.write_bytes(b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    chunked = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url + "/generate",
                              "-H", "Content-Type: application/json", "-H", "Transfer-Encoding: chunked",
                              "--data-binary", f"@{big}"], capture_output=True, text=True, timeout=60)
    assert chunked.stdout == "413"
    nan = subprocess.run([curl, "-s", "-X", "POST", url + "/generate", "-H", "Content-Type: application/json",
                          "-d", '{"text": "hey", "max_tokens": Infinity}'], capture_output=True, text=True, timeout=60)
    assert json.loads(nan.stdout) == {"error": "numbers must be finite: NaN and Infinity are not JSON"}

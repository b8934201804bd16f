"""A real client's latency while sockets that never send a request are open (issue 20).

    .venv/bin/python bench/bench_server_idle.py [--idle 150] [--connections 100] [--runs 5] [--no-baseline]

Serves a scripted two-piece reply (no model: the figure is the server's, not generation's) with
`twin serve`'s settings on loopback, then times ``POST /generate`` through urllib:

1. twin's server (server.http_server), no idle sockets;
2. twin's server with ``--idle`` sockets opened first that never send a byte;
3. baseline: plain waitress with the settings `twin serve` had before (same limits, its own
   cleanup_interval, no room made), with the same idle sockets: the client waits in the listen
   backlog until the idle ones time out (about 30-60 s; skip with --no-baseline).

Prints the median latency of each and the ratios (idle / none) side by side.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.app import create_app
from server.http_server import make_server, waitress_limits
from voice.backend import Backend


class Fixed(Backend):
    name = "fixed"

    def _pieces(self, messages, decoding, stats):
        stats["completion_tokens"] = 2
        yield from ("yeah | bar", "taco? DONE")


def _serve(twin: bool, connections: int):
    app = create_app(Fixed(), persona="bench", rate_limit=None)
    if twin:
        server = make_server(app, host="127.0.0.1", port=0, threads=8, **waitress_limits(connections))
    else:
        from waitress.server import create_server

        old = {k: v for k, v in waitress_limits(connections).items()
               if k not in ("cleanup_interval", "asyncore_use_poll")}
        server = create_server(app, host="127.0.0.1", port=0, threads=8, **old)
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{server.effective_port}"


def _latency(url: str) -> float:
    request = urllib.request.Request(url + "/generate", b'{"text": "hey"}', {"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as reply:
        reply.read()
    return time.perf_counter() - start


def _run(twin: bool, idle: int, connections: int, runs: int) -> float:
    server, url = _serve(twin, connections)
    _latency(url)  # warm up
    times = []
    for _ in range(runs):
        sockets = [socket.create_connection(("127.0.0.1", server.effective_port)) for _ in range(idle)]
        time.sleep(0.5)  # the server takes up what it will
        times.append(_latency(url))
        for sock in sockets:
            sock.close()
        time.sleep(0.5 if twin else 2.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=150)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    none = _run(True, 0, args.connections, args.runs)
    busy = _run(True, args.idle, args.connections, args.runs)
    print(f"{'server':<34}{'idle sockets':>13}{'median latency':>16}{'ratio':>8}")
    print(f"{'twin (server.http_server)':<34}{0:>13}{none * 1000:>13.1f} ms{1:>8.1f}")
    print(f"{'twin (server.http_server)':<34}{args.idle:>13}{busy * 1000:>13.1f} ms{busy / none:>8.1f}")
    if not args.no_baseline:
        base = _run(False, args.idle, args.connections, 1)
        print(f"{'baseline: waitress, old settings':<34}{args.idle:>13}{base * 1000:>13.1f} ms{base / none:>8.1f}")


if __name__ == "__main__":
    main()

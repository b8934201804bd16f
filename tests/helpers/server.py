"""Helpers for the server tests (no tests here): a scripted backend and a real server on loopback."""
from __future__ import annotations

import contextlib
import threading
import time

from voice.backend import Backend


class ScriptedBackend(Backend):
    """Streams fixed replies in fixed pieces (DONE may be split across them); records the prompts.

    ``pieces`` is one reply's pieces, or with ``replies`` a list of such lists used in turn
    (the last one repeats): for replies that differ from one try to the next.
    """

    name = "scripted"

    def __init__(self, pieces=("yeah | bar", "taco? D", "ONE and then junk"), delay: float = 0.0,
                 replies=None, **kwargs):
        super().__init__(**kwargs)
        self.replies = [list(r) for r in replies] if replies else [list(pieces)]
        self.delay, self.calls = delay, []

    @property
    def pieces(self):
        return self.replies[-1]

    @pieces.setter
    def pieces(self, value):
        self.replies = [list(value)]

    def _pieces(self, messages, decoding, stats):
        self.calls.append((messages, {"temperature": decoding.temperature, "max_tokens": decoding.max_tokens}))
        self.decodings = getattr(self, "decodings", []) + [decoding]
        pieces = self.replies[min(len(self.calls), len(self.replies)) - 1]
        stats["prompt_tokens"] = sum(len(m["content"].split()) for m in messages)
        for piece in pieces[:decoding.max_tokens]:
            if self.delay:
                time.sleep(self.delay)
            stats["completion_tokens"] += 1
            yield piece
        stats["finish_reason"] = "stop" if len(pieces) <= decoding.max_tokens else "length"


@contextlib.contextmanager
def running(app, threads: int = 8, **options):
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread with the server ``twin serve`` runs
    (server.http_server: waitress and what it adds); yields the base URL."""
    from server.http_server import make_server

    options.setdefault("asyncore_use_poll", True)  # as twin serve; closing under select() raises in the thread
    server = make_server(app, host="127.0.0.1", port=0, threads=threads, ident="twin-test", **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()

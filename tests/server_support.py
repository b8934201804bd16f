"""Helpers for the server tests (no tests here): a scripted backend and a real server on loopback."""
from __future__ import annotations

import contextlib
import threading
import time

from server.backends import Backend


class ScriptedBackend(Backend):
    """Streams a fixed reply in fixed pieces (DONE may be split across them); records the prompts."""

    name = "scripted"

    def __init__(self, pieces=("yeah | bar", "taco? D", "ONE and then junk"), delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.pieces, self.delay, self.calls = list(pieces), delay, []

    def _pieces(self, messages, temperature, max_tokens, stats):
        self.calls.append((messages, {"temperature": temperature, "max_tokens": max_tokens}))
        stats["prompt_tokens"] = sum(len(m["content"].split()) for m in messages)
        for piece in self.pieces[:max_tokens]:
            if self.delay:
                time.sleep(self.delay)
            stats["completion_tokens"] += 1
            yield piece
        stats["finish_reason"] = "stop" if len(self.pieces) <= max_tokens else "length"


@contextlib.contextmanager
def running(app, threads: int = 8):
    """Serve ``app`` with waitress on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="twin-test")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()

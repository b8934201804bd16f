"""A stand-in of the Telegram Bot API on loopback (no tests here): what `twin bot telegram
--api-url http://127.0.0.1:PORT/bot` talks to in the tests and the bench.

It answers ``/bot<TOKEN>/<method>`` in the Bot API's JSON shapes (``{"ok": true, "result": ...}``;
errors ``{"ok": false, "error_code", "description", "parameters"}``) for getMe, deleteWebhook,
getUpdates (long polling: held until an update comes or the timeout passes), sendMessage and
sendChatAction; python-telegram-bot sends form-encoded parameters, JSON-encoded where not
strings. A wrong token gets 401. Every call of the bot is recorded with the stand-in's
``time.monotonic()``; :meth:`fail` scripts the next answers of a method: a 429 with
``retry_after``, or a dropped connection (the socket closed with no answer).
"""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT = {"id": 4242, "is_bot": True, "first_name": "Twin", "username": "twin_test_bot", "can_join_groups": True,
       "can_read_all_group_messages": False, "supports_inline_queries": False}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client gone: fine
            super().handle_error(request, client_address)


@dataclass
class Call:
    at: float
    method: str
    params: dict
    fault: tuple | None = None  # what the stand-in answered instead of the result


@dataclass
class StandIn:
    token: str
    updates: list[dict] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, list[tuple]] = field(default_factory=dict)
    clock: object = time.monotonic

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._next_update = 1
        self._message_id = 1000
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- the test's side ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def push(self, text: str, *, user_id: int = 111, username: str | None = "alex", chat_id: int | None = None,
             chat_type: str = "private", entities: list | None = None, reply_to_bot: bool = False) -> float:
        """Queue a message from a user; returns the stand-in's time it was queued."""
        chat_id = user_id if chat_id is None else chat_id
        chat = {"id": chat_id, "type": chat_type}
        chat.update({"first_name": "Alex"} if chat_type == "private" else {"title": "the group"})
        sender = {"id": user_id, "is_bot": False, "first_name": "Alex"}
        if username:
            sender["username"] = username
        with self._cond:
            self._message_id += 1
            message = {"message_id": self._message_id, "date": int(time.time()), "chat": chat, "from": sender,
                       "text": text}
            if entities:
                message["entities"] = entities
            if reply_to_bot:
                message["reply_to_message"] = {"message_id": 1, "date": int(time.time()), "chat": chat,
                                               "from": BOT, "text": "earlier"}
            self.updates.append({"update_id": self._next_update, "message": message})
            self._next_update += 1
            self._cond.notify_all()
            return self.clock()

    def fail(self, method: str, *faults: tuple) -> None:
        """The next answers of ``method``: ``("429", retry_after)`` or ``("drop",)``."""
        with self._cond:
            self.faults.setdefault(method, []).extend(faults)

    def sent(self, method: str = "sendMessage") -> list[Call]:
        """The calls of ``method`` that succeeded."""
        with self._cond:
            return [c for c in self.calls if c.method == method and c.fault is None]

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        """Wait until ``predicate(calls)`` holds (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.calls)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    # --- the bot's side ----------------------------------------------------------------------------

    def _answer(self, method: str, params: dict):
        if method == "getMe":
            return BOT
        if method in ("deleteWebhook", "setWebhook", "sendChatAction", "close", "logOut"):
            return True
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            timeout = min(float(params.get("timeout") or 0), 2.0)
            deadline = time.monotonic() + timeout
            with self._cond:
                if offset:  # as Telegram: an offset confirms (forgets) every update before it
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                while True:
                    ready = [u for u in self.updates if u["update_id"] >= offset]
                    left = deadline - time.monotonic()
                    if ready or left <= 0:
                        return ready
                    self._cond.wait(min(left, 0.1))
        if method == "sendMessage":
            with self._cond:
                self._message_id += 1
                chat_id = int(params["chat_id"])
                return {"message_id": self._message_id, "date": int(time.time()), "from": BOT,
                        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                        "text": params.get("text", "")}
        return None

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body are two writes: without NODELAY, Nagle holds the body 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                path = urllib.parse.urlparse(self.path).path
                prefix = f"/bot{standin.token}/"
                if not path.startswith("/bot"):
                    return self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                if not path.startswith(prefix):
                    return self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                method = path[len(prefix):]
                params = {}
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    for key, value in urllib.parse.parse_qsl(raw, keep_blank_values=True):
                        params[key] = value
                with standin._cond:
                    fault = standin.faults.get(method, [None]).pop(0) if standin.faults.get(method) else None
                    standin.calls.append(Call(standin.clock(), method, params, fault))
                    standin._cond.notify_all()
                if fault and fault[0] == "429":
                    return self._reply(429, {"ok": False, "error_code": 429,
                                             "description": f"Too Many Requests: retry after {fault[1]}",
                                             "parameters": {"retry_after": fault[1]}})
                if fault and fault[0] == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return None
                result = standin._answer(method, params)
                if result is None:
                    return self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found: method"})
                return self._reply(200, {"ok": True, "result": result})

            do_GET = do_POST = _handle

        return Handler

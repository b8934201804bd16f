"""A stand-in of Discord on loopback (no tests here): its REST API and its gateway (a websocket),
enough for the real discord.py client of `twin bot discord --api-url http://127.0.0.1:PORT/api/v10`.

REST: ``GET /users/@me`` and ``/oauth2/applications/@me`` (the login), ``GET /gateway/bot`` (where the gateway is),
``POST /channels/{id}/typing``, ``POST /channels/{id}/messages`` (recorded with the stand-in's
``time.monotonic()``; :meth:`fail` scripts a 429 with ``retry_after`` in Discord's shape). A wrong
token gets 401. Gateway: HELLO, then READY after the client's IDENTIFY, heartbeats acknowledged,
then the dispatches the test sends (:meth:`dispatch`: GUILD_CREATE, MESSAGE_CREATE) as text
frames of gateway JSON.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

BOT_USER = {"id": "4242", "username": "twin", "discriminator": "0", "global_name": "Twin", "avatar": None,
            "bot": True}
_ids = itertools.count(900_000_000_000_000_000)


def user(user_id: int, name: str) -> dict:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name, "avatar": None}


def message(channel_id: int, author: dict, content: str, *, guild_id: int | None = None,
            mentions: list[dict] | None = None, reply_to: dict | None = None) -> dict:
    data = {"id": str(next(_ids)), "channel_id": str(channel_id), "author": author, "content": content,
            "timestamp": "2026-01-01T12:00:00.000000+00:00", "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": mentions or [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": False, "type": 19 if reply_to else 0, "flags": 0}
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
        data["member"] = {"roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "deaf": False, "mute": False}
    if reply_to:
        data["message_reference"] = {"message_id": reply_to["id"], "channel_id": str(channel_id)}
        data["referenced_message"] = reply_to
    return data


def guild(guild_id: int, channel_id: int) -> dict:
    return {"id": str(guild_id), "name": "the server", "owner_id": "1", "unavailable": False, "large": False,
            "member_count": 2, "features": [], "emojis": [], "stickers": [], "members": [], "threads": [],
            "presences": [], "voice_states": [], "stage_instances": [], "guild_scheduled_events": [],
            "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": "0", "position": 0, "color": 0,
                       "hoist": False, "managed": False, "mentionable": False}],
            "channels": [{"id": str(channel_id), "type": 0, "name": "general", "position": 0,
                          "permission_overwrites": [], "nsfw": False, "parent_id": None}]}


def _json(body, status: int = 200, headers: dict | None = None) -> web.Response:
    """JSON as Discord sends it: discord.py reads a body as JSON only for exactly 'application/json'."""
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


@dataclass
class Call:
    at: float
    method: str
    channel: str
    body: dict
    fault: tuple | None = None


@dataclass
class DiscordStandIn:
    token: str
    calls: list[Call] = field(default_factory=list)
    faults: list[tuple] = field(default_factory=list)
    identified: int = 0

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(2)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- the test's side ---------------------------------------------------------------------------

    def __enter__(self):
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def dispatch(self, event: str, data: dict) -> float:
        """Send a gateway dispatch to every connected client; returns the stand-in's time."""
        frame = json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data})
        at = time.monotonic()
        asyncio.run_coroutine_threadsafe(self._broadcast(frame), self.loop).result(10)
        return at

    def fail(self, *faults: tuple) -> None:
        """The next answers of ``POST /channels/{id}/messages``: ``("429", retry_after)``."""
        with self._lock:
            self.faults.extend(faults)

    def sent(self, method: str = "message") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.fault is None]

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    # --- Discord's side ----------------------------------------------------------------------------

    async def _broadcast(self, frame: str) -> None:
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(frame)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/gateway/bot", self._gateway_url)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_post("/api/v10/channels/{channel}/typing", self._typing)
        app.router.add_post("/api/v10/channels/{channel}/messages", self._send)
        app.router.add_get("/gateway", self._gateway)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    def _authorized(self, request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    def _unauthorized(self):
        return _json({"message": "401: Unauthorized", "code": 0}, status=401)

    async def _me(self, request):
        return _json(BOT_USER) if self._authorized(request) else self._unauthorized()

    async def _application(self, request):
        if not self._authorized(request):
            return self._unauthorized()
        return _json({"id": BOT_USER["id"], "name": "twin", "description": "", "icon": None, "bot_public": False,
                      "bot_require_code_grant": False, "owner": user(1, "owner"), "verify_key": "0" * 64,
                      "flags": 0, "team": None})

    async def _gateway_url(self, request):
        if not self._authorized(request):
            return self._unauthorized()
        return _json({"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1,
                                  "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0,
                                                          "max_concurrency": 1}})

    def _record(self, method: str, request, body: dict, fault=None) -> None:
        with self._lock:
            self.calls.append(Call(time.monotonic(), method, request.match_info["channel"], body, fault))
            self._lock.notify_all()

    async def _typing(self, request):
        if not self._authorized(request):
            return self._unauthorized()
        self._record("typing", request, {})
        return web.Response(status=204)

    async def _send(self, request):
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        self._record("message", request, body, fault)
        if fault and fault[0] == "429":
            return _json({"message": "You are being rate limited.", "retry_after": fault[1],
                                      "global": False, "code": 0}, status=429,
                                     headers={"Retry-After": str(fault[1]), "X-RateLimit-Scope": "user"})
        channel = request.match_info["channel"]
        return _json(message(int(channel), BOT_USER, body.get("content", "")))

    async def _gateway(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                break
            payload = json.loads(frame.data)
            if payload.get("op") == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif payload.get("op") == 2:
                if payload["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                self._sockets.append(ws)
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": 1, "d": {
                    "v": 10, "user": BOT_USER, "guilds": [], "session_id": "standin",
                    "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                    "application": {"id": BOT_USER["id"], "flags": 0}}}))
                with self._lock:
                    self.identified += 1
                    self._lock.notify_all()
        return ws

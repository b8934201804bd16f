"""The Flask app: the twin's HTTP API, its protections, and the chat page.

Routes (OpenAI-compatible ones in server.openai_compat):

* ``POST /generate`` ``{"text"}`` (optional ``history`` or ``conversation_id``, ``temperature``,
  ``max_tokens``) -> ``{"response": "yeah | bartaco?", "messages": ["yeah", "bartaco?"]}``
  (plus ``conversation_id`` when one was sent: the server then keeps the history);
* ``POST /feedback`` a rating on a reply, stored in SQLite (server.feedback);
* ``GET /health`` (never needs the key), ``GET /`` the chat page (static, holds no data).

Every answer is JSON; every error is ``{"error": "..."}`` with a 4xx/5xx code, never an HTML
page or a traceback. With an API key, every route but ``/health`` and the page needs
``Authorization: Bearer KEY`` (compared in constant time). Requests are rate-limited per key
(per client address without a key): 429 with ``Retry-After``. CORS headers are sent only for
origins given with ``cors_origins``. Logs never hold message text unless ``log_requests``.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from dataprocess.template import prompt_messages

from .backends import PromptTooLong
from .conversations import ConversationStore
from .feedback import FeedbackStore
from .queueing import Overloaded
from .ratelimit import RateLimiter
from .replies import complete
from .schema import BadRequest, conversation_id, json_body, number, text_field, turns

log = logging.getLogger("twin.server")

MAX_TOKENS_CAP = 256
DEFAULT_MAX_TOKENS = 64
MAX_BODY_BYTES = 64 * 1024
MAX_CONTEXT_CHARS = 6000  # earlier turns kept in a prompt (newest first) so it fits the context
PAGE = Path(__file__).with_name("static") / "chat.html"
OPEN_ROUTES = ("/health",)           # no key needed, not rate-limited
PUBLIC_PAGES = ("/", "/favicon.ico")  # static, no data: loadable by a browser without a key


@dataclass
class TwinState:
    """What the routes share: the backend and the serving choices."""

    backend: object
    persona: str = "me"
    lowercase: bool = True
    log_requests: bool = False
    max_tokens_cap: int = MAX_TOKENS_CAP
    conversations: ConversationStore = field(default_factory=ConversationStore)
    feedback: FeedbackStore | None = None

    def clean(self, text: str) -> str:
        """Live text as the training data was written (lowercased unless the workspace said not to)."""
        text = text.strip()
        return text.lower() if self.lowercase else text

    def prompt(self, history: list[tuple[str, str]], incoming: str) -> list[dict]:
        """The model's messages: the twin's system line, the newest turns that fit, the incoming text."""
        kept, total = [], len(incoming)
        for role, text in reversed(history):
            total += len(text)
            if total > MAX_CONTEXT_CHARS:
                break
            kept.append((role, self.clean(text)))
        return prompt_messages(self.persona, self.clean(incoming), kept[::-1])

    def note(self, route: str, incoming: str, reply) -> None:
        if self.log_requests:
            log.info("%s: %r -> %r", route, incoming, reply.text)
        else:
            log.info("%s: %d chars in, %d tokens out (%s)", route, len(incoming), reply.completion_tokens,
                     reply.finish_reason)


def state() -> TwinState:
    from flask import current_app

    return current_app.extensions["twin"]


def create_app(backend, persona: str = "me", api_key: str | None = None, log_requests: bool = False,
               lowercase: bool = True, *, rate_limit: str | RateLimiter | None = None,
               cors_origins: tuple[str, ...] | list[str] = (), feedback_db: Path | str | None = None,
               conversations: ConversationStore | None = None, max_tokens_cap: int = MAX_TOKENS_CAP) -> Flask:
    """Build the app around a loaded backend (server.backends, or anything with ``stream``).

    ``rate_limit`` is a :class:`RateLimiter` or a spec like ``"60/min"`` (None: no limit);
    ``feedback_db`` enables ``POST /feedback``; ``lowercase`` mirrors the data rule the twin was
    trained with, so live text looks like the training prompts.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    twin = TwinState(backend, persona, lowercase, log_requests, max_tokens_cap,
                     conversations or ConversationStore(),
                     FeedbackStore(feedback_db) if feedback_db else None)
    app.extensions["twin"] = twin
    limiter = RateLimiter.parse(rate_limit) if isinstance(rate_limit, str) or rate_limit is None else rate_limit
    origins = set(cors_origins)

    from .openai_compat import blueprint

    app.register_blueprint(blueprint)
    _register_errors(app)

    @app.before_request
    def guard():
        g.started = time.perf_counter()
        if request.method == "OPTIONS" and origins:
            return _preflight(origins)
        if request.path in OPEN_ROUTES or (request.path in PUBLIC_PAGES and request.method == "GET"):
            return None
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if api_key is not None:
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return _error("missing or wrong API key (send 'Authorization: Bearer KEY')", 401,
                              {"WWW-Authenticate": "Bearer"})
            g.caller = "key:" + hashlib.sha256(given.encode()).hexdigest()[:16]
        else:
            g.caller = "ip:" + (request.remote_addr or "?")
        if limiter is not None:
            wait = limiter.check(g.caller)
            if wait:
                retry = RateLimiter.retry_after(wait)
                return _error(f"rate limit exceeded: retry in {retry} s", 429, {"Retry-After": str(retry)})
        return None

    @app.after_request
    def finish(response: Response):
        origin = request.headers.get("Origin")
        if origin and (origin in origins or "*" in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
            response.headers.add("Vary", "Origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/health")
    def health():
        return jsonify(status="ok", model=getattr(backend, "name", "twin"), feedback=twin.feedback is not None)

    @app.get("/")
    def page():
        return Response(PAGE.read_bytes(), mimetype="text/html",
                        headers={"Cache-Control": "no-cache",
                                 "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                                            "script-src 'unsafe-inline'; img-src data:"})

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.post("/generate")
    def generate():
        body = json_body('{"text": "hello, how are you?"}')
        text = text_field(body, "text")
        temperature = number(body, "temperature", 0.7, float, 0.0, 2.0)
        max_tokens = number(body, "max_tokens", DEFAULT_MAX_TOKENS, int, 1, twin.max_tokens_cap)
        cid = conversation_id(body)
        if cid and body.get("history") is not None:
            raise BadRequest("send either 'history' or 'conversation_id' (the server keeps the history), not both")
        history = twin.conversations.history(g.caller, cid) if cid else turns(body.get("history") or [], "history")
        reply = complete(backend, twin.prompt(history, text), temperature=temperature, max_tokens=max_tokens)
        twin.note("generate", text, reply)
        out = {"response": reply.text, "messages": reply.messages}
        if cid:
            said = [("user", twin.clean(text))] + ([("assistant", reply.text)] if reply.text else [])
            twin.conversations.append(g.caller, cid, *said)
            out["conversation_id"] = cid
        return jsonify(out)

    @app.post("/feedback")
    def feedback():
        if twin.feedback is None:
            return _error("feedback is not enabled on this server (serve a --workspace or give --feedback-db)", 404)
        body = json_body('{"prompt": "...", "reply": "...", "rating": 1}')
        rating = _rating(body.get("rating"))
        reply = text_field(body, "reply")
        cid = conversation_id(body)
        if body.get("messages") is not None:
            said = turns(body["messages"], "messages", roles=("system", "user", "assistant"))
            said = [(r, t) for r, t in said if r != "system"]
            if not said or said[-1][0] != "user":
                raise BadRequest("'messages' must end with the user message that the reply answers")
            history, incoming = said[:-1], said[-1][1]
        else:
            incoming = text_field(body, "prompt")
            if body.get("history") is not None:
                history = turns(body["history"], "history")
            else:
                history = _history_before(twin, cid, incoming, reply) if cid else []
        row = twin.feedback.add(twin.prompt(history, incoming), reply, rating, cid)
        log.info("feedback #%d: rating %+d", row, rating)
        return jsonify(id=row, stored=True), 201

    return app


def _rating(value) -> int:
    if value in ("up", "down"):
        return 1 if value == "up" else -1
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, -1):
        return value
    raise BadRequest("'rating' must be 1 or -1 (or \"up\" / \"down\")")


def _history_before(twin: TwinState, cid: str, incoming: str, reply: str) -> list[tuple[str, str]]:
    """The stored turns before the exchange being rated (empty when it is not found)."""
    said = twin.conversations.history(g.caller, cid)
    target = [("user", twin.clean(incoming)), ("assistant", reply.strip())]
    for i in range(len(said) - 2, -1, -1):
        if said[i:i + 2] == target:
            return said[:i]
    return []


def _error(message: str, status: int, headers: dict | None = None):
    response = jsonify(error=message)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _preflight(origins: set[str]):
    origin = request.headers.get("Origin", "")
    if origin not in origins and "*" not in origins:
        return _error("origin not allowed", 403)
    response = Response(status=204)
    response.headers.update({
        "Access-Control-Allow-Origin": "*" if "*" in origins else origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    })
    return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {404: "no such route", 405: f"method {request.method} not allowed here",
                    413: f"request body larger than {MAX_BODY_BYTES // 1024} KiB"}
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return _error(messages.get(exc.code) or exc.description or exc.name, exc.code or 500, headers)

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return _error(str(exc), 400)

    @app.errorhandler(PromptTooLong)
    def too_long(exc: PromptTooLong):
        return _error(str(exc), 400)

    @app.errorhandler(Overloaded)
    def overloaded(exc: Overloaded):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return _error(str(exc), exc.status, {"Retry-After": str(exc.retry_after)})

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        # The type only: an exception's message may quote the request's text.
        log.error("%s %s failed: %s", request.method, request.path, type(exc).__name__)
        log.debug("traceback", exc_info=True)
        return _error("internal error while generating", 500)

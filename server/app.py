"""The Flask app factory: the twin's HTTP API, its protections and the chat page.

:func:`create_app` builds the shared state (server.state) around a loaded backend, installs
the protections (server.security) and the JSON errors (server.errors), and registers one
blueprint per area:

* ``api``       ``POST /generate`` (server.api)
* ``openai``    ``POST /v1/chat/completions``, ``GET /v1/models`` (server.openai_compat)
* ``feedback``  ``POST /feedback`` (server.feedback)
* ``pages``     ``GET /`` (the chat page), ``/health``, ``/metrics`` (server.pages)
* ``can_you_tell`` the "Can you tell?" game (server.can_you_tell), playing on the test split of
  the ``workspace`` the app is built with (its routes say one is needed when there is none)

plus any ``extra_blueprints`` a caller passes (a page of its own, registered the same way).

Every answer is JSON; every error is ``{"error": "..."}`` with a 4xx/5xx code, never an HTML
page or a traceback. With API keys, every route but ``/health`` and the static page needs
``Authorization: Bearer KEY``. Live text is cleaned and cut to context by the rules the twin
was trained with (dataprocess.live_prompt). Logs never hold message text unless
``log_requests``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from flask import Blueprint, Flask

from dataprocess.feedback import FeedbackStore
from dataprocess.live_prompt import LivePrompt
from dataprocess.memory import Memory

from core.settings import DEFAULT_PERSONA, Rules, Sampling

from . import api, can_you_tell, feedback, openai_compat, pages, security
from .conversations import ConversationStore
from .errors import register as register_errors
from .keys import KeyRing
from .metrics import Metrics
from .ratelimit import RateLimiter
from .state import MAX_TOKENS_CAP, TwinState, current

__all__ = ["BLUEPRINTS", "MAX_BODY_BYTES", "MAX_TOKENS_CAP", "create_app", "current"]

MAX_BODY_BYTES = 64 * 1024
AUTH_FAILURES = "10/min"  # wrong keys allowed per client address before it is throttled
BLUEPRINTS: tuple[Blueprint, ...] = (api.blueprint, openai_compat.blueprint, feedback.blueprint, pages.blueprint,
                                     can_you_tell.blueprint)


def create_app(backend, persona: str = DEFAULT_PERSONA, api_key: str | KeyRing | None = None,
               log_requests: bool = False, *, rules: Rules | None = None, sampling: Sampling | None = None,
               rate_limit: str | RateLimiter | None = None, auth_failures: str | None = AUTH_FAILURES,
               cors_origins: Iterable[str] = (), feedback_db: Path | str | None = None,
               conversations: ConversationStore | None = None, max_tokens_cap: int = MAX_TOKENS_CAP,
               behind_proxy: bool = False, workspace: Path | str | None = None,
               extra_blueprints: Iterable[Blueprint] = (), memory: Memory | None = None) -> Flask:
    """Build the app around a loaded backend (server.backends, or anything with ``stream``).

    ``api_key`` is one key or a :class:`KeyRing` of named keys (None: no authentication);
    ``rules`` and ``sampling`` are the twin's data rules and decoding defaults and ``memory`` its
    knowledge base and contact groups (the workspace's or the GGUF's metadata); ``rate_limit`` is a :class:`RateLimiter` or a spec like ``"60/min"``
    (None: no limit); ``feedback_db`` enables ``POST /feedback``. ``behind_proxy`` (``twin serve
    --public``: every request arrives from the local ngrok agent) takes the client address from
    the one proxy's ``X-Forwarded-For`` (werkzeug's ProxyFix), so throttles and namespaces keyed
    by address tell the internet's clients apart. ``workspace``: where the "Can you tell?" game
    takes its rounds from and keeps its results.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)
    keys = KeyRing.single(api_key) if isinstance(api_key, str) else api_key
    twin = TwinState(
        backend, LivePrompt(persona, rules or Rules(), memory or Memory()), sampling or Sampling(), keys=keys,
        limiter=RateLimiter.parse(rate_limit) if isinstance(rate_limit, str) or rate_limit is None else rate_limit,
        auth_failures=RateLimiter.parse(auth_failures), log_requests=log_requests, max_tokens_cap=max_tokens_cap,
        conversations=conversations or ConversationStore(),
        feedback=FeedbackStore(feedback_db) if feedback_db else None,
        cors_origins=frozenset(cors_origins), metrics=Metrics())
    depth = getattr(backend, "queue_depth", None)
    if depth is not None:
        twin.metrics.watch_queue(depth)
    app.extensions["twin"] = twin
    security.install(app, twin)
    register_errors(app, MAX_BODY_BYTES)
    for blueprint in (*BLUEPRINTS, *extra_blueprints):
        app.register_blueprint(blueprint)
    if workspace is not None:
        app.extensions["can_you_tell"] = can_you_tell.Game(Path(workspace))
    return app

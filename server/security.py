"""The app's protections, run around every request: keys, throttles, CORS, safe headers.

* With keys (server.keys), every route but ``/health`` and the static page (``GET /``, which
  holds no data) needs ``Authorization: Bearer KEY``: 401 otherwise. A client address that
  keeps sending wrong keys is throttled (``auth_failures``, 429 with ``Retry-After``) before
  its key is even looked at, so keys cannot be guessed at speed.
* The caller is the key's name (``key:NAME``), or the client address without keys
  (``ip:ADDR``): rate limits, conversations and reply ids are kept per caller.
* CORS headers only for the origins given; every response says ``X-Frame-Options: DENY`` and
  ``Content-Security-Policy: frame-ancestors 'none'`` (the page cannot be framed),
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
* Each request is counted in the metrics (route, status, latency).
"""
from __future__ import annotations

import time

from flask import Flask, Response, g, request

from .errors import error_response
from .ratelimit import RateLimiter
from .state import TwinState

OPEN_ROUTES = ("/health",)           # no key needed, not rate-limited
PUBLIC_PAGES = ("/", "/favicon.ico", "/key.js", "/can-you-tell")  # static, no data: loadable by a browser without a key
FRAME_POLICY = "frame-ancestors 'none'"
PAGE_POLICY = ("default-src 'self'; style-src 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src data:; "
               "base-uri 'none'; form-action 'self'; " + FRAME_POLICY)


def _given_key() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def install(app: Flask, twin: TwinState) -> None:
    @app.before_request
    def guard():
        g.started = time.perf_counter()
        if request.method == "OPTIONS" and twin.cors_origins:
            return _preflight(twin.cors_origins)
        if request.path in OPEN_ROUTES or (request.path in PUBLIC_PAGES and request.method in ("GET", "HEAD")):
            return None
        address = "ip:" + (request.remote_addr or "?")
        if twin.keys is not None:
            if twin.auth_failures is not None:
                wait = twin.auth_failures.peek(address)
                if wait:
                    return _too_many(f"too many wrong API keys from this address: retry in "
                                     f"{RateLimiter.retry_after(wait)} s", wait)
            name = twin.keys.identify(_given_key())
            if name is None:
                if twin.auth_failures is not None:
                    twin.auth_failures.check(address)
                return error_response("missing or wrong API key (send 'Authorization: Bearer KEY')", 401,
                                      {"WWW-Authenticate": "Bearer"})
            g.caller = "key:" + name
        else:
            g.caller = address
        if twin.limiter is not None:
            wait = twin.limiter.check(g.caller)
            if wait:
                return _too_many(f"rate limit exceeded: retry in {RateLimiter.retry_after(wait)} s", wait)
        return None

    @app.after_request
    def finish(response: Response):
        origin = request.headers.get("Origin")
        origins = twin.cors_origins
        if origin and (origin in origins or "*" in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
            response.headers.add("Vary", "Origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Content-Security-Policy", FRAME_POLICY)
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        rule = request.url_rule.rule if request.url_rule is not None else "unknown"
        twin.metrics.request(rule, response.status_code, time.perf_counter() - g.get("started", time.perf_counter()))
        return response


def _too_many(message: str, wait: float):
    return error_response(message, 429, {"Retry-After": str(RateLimiter.retry_after(wait))})


def _preflight(origins: frozenset[str]):
    origin = request.headers.get("Origin", "")
    if origin not in origins and "*" not in origins:
        return error_response("origin not allowed", 403)
    response = Response(status=204)
    response.headers.update({
        "Access-Control-Allow-Origin": "*" if "*" in origins else origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    })
    return response

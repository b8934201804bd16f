"""The Flask app: the twin's HTTP API.

``POST /generate`` takes ``{"text": "..."}`` (optional ``history``, ``temperature``,
``max_tokens``) and answers ``{"response": "yeah | bartaco?", "messages": ["yeah", "bartaco?"]}``;
``GET /health`` says the server is up. Every error is JSON ``{"error": "..."}`` with a 4xx/5xx
code, never an HTML page. With an API key set, every route but ``/health`` needs
``Authorization: Bearer KEY``.
"""
from __future__ import annotations

import hmac
import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from dataprocess.template import prompt_messages, split_messages, strip_terminator

log = logging.getLogger("twin.server")

MAX_TOKENS_CAP = 256
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 4000


class BadRequest(ValueError):
    """A request body the API cannot use; becomes a 400 JSON reply."""


def _number(body: dict, key: str, default, kind, low, high):
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"'{key}' must be a number")
    if kind is int and value != int(value):
        raise BadRequest(f"'{key}' must be a whole number")
    if not low <= value <= high:
        raise BadRequest(f"'{key}' must be between {low} and {high}")
    return kind(value)


def _history(body: dict) -> list[tuple[str, str]]:
    history = body.get("history", [])
    if not isinstance(history, list):
        raise BadRequest("'history' must be a list of {\"role\", \"content\"} objects")
    turns = []
    for item in history:
        if (not isinstance(item, dict) or item.get("role") not in ("user", "assistant")
                or not isinstance(item.get("content"), str)):
            raise BadRequest("each 'history' item needs 'role' ('user' or 'assistant') and 'content' (a string)")
        turns.append((item["role"], item["content"]))
    return turns


def create_app(backend, persona: str = "me", api_key: str | None = None, log_requests: bool = False,
               lowercase: bool = True) -> Flask:
    """Build the app around a loaded backend (anything with ``generate(messages, ...)``).

    ``lowercase`` mirrors the data rule the twin was trained with, so live text looks like
    the training prompts.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description or exc.name), exc.code

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return jsonify(error=str(exc)), 400

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("request failed")
        return jsonify(error="internal error while generating"), 500

    @app.before_request
    def require_key():
        if api_key is None or request.path == "/health":
            return None
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            return jsonify(error="missing or wrong API key (send 'Authorization: Bearer KEY')"), 401
        return None

    @app.get("/health")
    def health():
        return jsonify(status="ok", model=getattr(backend, "name", "twin"))

    @app.post("/generate")
    def generate():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest('send a JSON object like {"text": "hello, how are you?"} with Content-Type: application/json')
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("'text' must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            raise BadRequest(f"'text' is longer than {MAX_TEXT_CHARS} characters")
        temperature = _number(body, "temperature", 0.7, float, 0.0, 2.0)
        max_tokens = _number(body, "max_tokens", 64, int, 1, MAX_TOKENS_CAP)
        incoming = text.strip().lower() if lowercase else text.strip()
        messages = prompt_messages(persona, incoming, _history(body))
        result = backend.generate(messages, temperature=temperature, max_tokens=max_tokens)
        reply = strip_terminator(result.text)
        if log_requests:
            log.info("generate: %r -> %r", text, reply)
        else:
            log.info("generate: %d chars in, %d tokens out", len(text), result.completion_tokens)
        return jsonify(response=reply, messages=split_messages(reply))

    return app

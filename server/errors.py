"""Every error as JSON ``{"error": "..."}`` with its status code: never an HTML page or a traceback."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from voice.backend import PromptTooLong
from voice.queueing import Overloaded
from .schema import BadRequest

log = logging.getLogger("twin.server")


def error_response(message: str, status: int, headers: dict | None = None):
    response = jsonify(error=message)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register(app: Flask, max_body_bytes: int) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {404: "no such route", 405: f"method {request.method} not allowed here",
                    413: f"request body larger than {max_body_bytes // 1024} KiB"}
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return error_response(messages.get(exc.code) or exc.description or exc.name, exc.code or 500, headers)

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return error_response(str(exc), 400)

    @app.errorhandler(PromptTooLong)
    def too_long(exc: PromptTooLong):
        return error_response(str(exc), 400)

    @app.errorhandler(Overloaded)
    def overloaded(exc: Overloaded):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return error_response(str(exc), exc.status, {"Retry-After": str(exc.retry_after)})

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        # The type only: an exception's message may quote the request's text.
        log.error("%s %s failed: %s", request.method, request.path, type(exc).__name__)
        log.debug("traceback", exc_info=True)
        return error_response("internal error while generating", 500)

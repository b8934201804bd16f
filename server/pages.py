"""Routes that are not the API proper: the chat page, ``/health`` and ``/metrics``.

``GET /`` is a static page that holds no data (it asks for the key and talks to the API
from the browser), so it needs no key; ``/health`` never needs one; ``/metrics`` does.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify

from .security import PAGE_POLICY
from .state import current

blueprint = Blueprint("pages", __name__)
PAGE = Path(__file__).with_name("static") / "chat.html"
KEY_SCRIPT = Path(__file__).with_name("static") / "key.js"  # the key box both pages share


@blueprint.get("/")
def page():
    return Response(PAGE.read_bytes(), mimetype="text/html",
                    headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY})


@blueprint.get("/key.js")
def key_script():
    return Response(KEY_SCRIPT.read_bytes(), mimetype="text/javascript", headers={"Cache-Control": "no-cache"})


@blueprint.get("/favicon.ico")
def favicon():
    return Response(status=204)


@blueprint.get("/health")
def health():
    twin = current()
    return jsonify(status="ok", model=twin.model_name, feedback=twin.feedback is not None)


@blueprint.get("/metrics")
def metrics():
    return current().metrics.render()

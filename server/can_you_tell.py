"""The "Can you tell?" page: friends guess which of two replies is really the person's.

A round shows a contact's message from the workspace's test split (with the turn before it)
and two replies in random order: the person's real reply and the twin's, generated now by the
served model from the same prompt. The friend picks the one they think is real. Rounds and
picks are stored by ``trainer.judgements`` in WORKSPACE/can_you_tell.sqlite; ``twin eval``
summarises them (the share fooled, with a confidence interval), the human measure next to its
classifier.

Routes (the page is static and holds no data, like the chat page; the others need the key):

* ``GET /can-you-tell``: the page;
* ``POST /can-you-tell/round`` -> ``{"id", "context": [...], "message", "replies": [a, b]}``;
* ``POST /can-you-tell/answer`` ``{"id", "pick": 0 | 1}`` -> ``{"correct", "real"}`` (which slot was real);
* ``GET /can-you-tell/results`` -> ``{"answered", "fooled", "share_fooled", "ci95"}``.

The game needs the test split, so it is on only when the server runs with a workspace
(:func:`enable`); otherwise its routes answer 404 with a JSON error saying so.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify

from core import artifacts
from core.terminator import split_messages, strip_terminator
from core.workspace import Workspace
from trainer.judgements import JudgementStore, RoundError, summary

from .schema import BadRequest, json_body
from .security import PAGE_POLICY

PAGE_PATH = "/can-you-tell"
PAGE = Path(__file__).with_name("static") / "can_you_tell.html"
CONTEXT_TURNS = 1  # earlier turns shown above the contact's message

blueprint = Blueprint("can_you_tell", __name__)


class Game:
    """The test split's examples and the judgement store of one workspace."""

    def __init__(self, workspace: Path):
        ws = Workspace(workspace)
        self.examples = _examples(ws.split_path("test"))
        self.db_path = ws.root / artifacts.JUDGEMENTS_FILE
        self.store = JudgementStore(self.db_path) if self.examples else None


def _examples(path: Path) -> list[dict]:
    """Test examples with a real, non-empty reply (line number kept for the record)."""
    if not path.is_file():
        return []
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            real = strip_terminator(record["completion"][0]["content"])
            prompt = list(record["prompt"])
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        if real and prompt and prompt[-1].get("role") == "user":
            found.append({"line": number, "prompt": prompt, "real": real})
    return found


def enable(app, workspace: Path | str | None) -> None:
    """Serve the game's routes; with a workspace, play on its test split (results in its
    can_you_tell.sqlite), without one the routes say that a workspace is needed."""
    if blueprint.name not in app.blueprints:
        app.register_blueprint(blueprint)
    if workspace is not None:
        app.extensions["can_you_tell"] = Game(Path(workspace))


def _game() -> Game:
    game = current_app.extensions.get("can_you_tell")
    if game is None:
        raise _NotAvailable("the Can you tell? game needs the workspace's test split: "
                            "serve with `twin serve --workspace W`")
    if not game.examples:
        raise _NotAvailable("the workspace's test split holds no examples: run `twin process` first")
    return game


class _NotAvailable(Exception):
    pass


@blueprint.errorhandler(_NotAvailable)
def _not_available(exc):
    response = jsonify(error=str(exc))
    response.status_code = 404
    return response


@blueprint.errorhandler(RoundError)
def _bad_round(exc):
    response = jsonify(error=str(exc))
    response.status_code = 409 if "already" in str(exc) else 404 if "no such round" in str(exc) else 400
    return response


@blueprint.get(PAGE_PATH)
def page():
    return Response(PAGE.read_bytes(), mimetype="text/html",
                    headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY})


def _twin_reply(prompt: list[dict]) -> str:
    """The served twin's reply to the example's prompt, sampled with its defaults like any
    request (voice.replies never returns an empty one: EmptyReply is a 503)."""
    from voice.replies import complete
    from .state import current

    twin = current()
    return complete(twin.backend, prompt, twin.decoding()).text


@blueprint.post(PAGE_PATH + "/round")
def new_round():
    game = _game()
    example = random.SystemRandom().choice(game.examples)
    prompt = example["prompt"]
    twin = _twin_reply(prompt)
    shown = game.store.open_round(example["line"], prompt[-1]["content"], example["real"], twin)
    context = [{"role": m["role"], "content": m["content"]} for m in prompt[1:-1] if m.get("role") != "system"]
    return jsonify(id=shown["id"], context=context[-CONTEXT_TURNS:] if CONTEXT_TURNS else [],
                   message=shown["message"], replies=shown["replies"],
                   parts=[split_messages(r) for r in shown["replies"]])


@blueprint.post(PAGE_PATH + "/answer")
def answer():
    game = _game()
    body = json_body('{"id": "...", "pick": 0}')
    round_id, pick = body.get("id"), body.get("pick")
    if not isinstance(round_id, str) or not round_id:
        raise BadRequest("'id' must be the round's id (a string)")
    if isinstance(pick, bool) or pick not in (0, 1):
        raise BadRequest("'pick' must be 0 or 1 (the reply you think is real)")
    return jsonify(game.store.answer(round_id, pick))


@blueprint.get(PAGE_PATH + "/results")
def results():
    game = _game()
    return jsonify(summary(game.db_path))

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

The game needs the test split (read by ``dataprocess.splits.read_split``), so it plays only
when the app is built with a workspace (``server.app.create_app(workspace=...)``, as ``twin
serve --workspace`` does); otherwise its routes answer 404 with a JSON error saying so.
"""
from __future__ import annotations

import random
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify

from core import artifacts
from core.terminator import split_messages
from core.workspace import Workspace
from dataprocess.splits import Example, SplitError, read_split
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
        self.problem = "the workspace's test split holds no examples: run `twin process` first"
        try:  # a contact's message answered by a real, non-empty reply
            self.examples = [e for e in read_split(ws.split_path("test"), required=False)
                             if e.reply and e.prompt and e.prompt[-1].get("role") == "user"]
        except SplitError as exc:  # a damaged split: the game says so, the rest of the server runs
            self.examples, self.problem = [], str(exc)
        self.db_path = ws.root / artifacts.JUDGEMENTS_FILE
        self.store = JudgementStore(self.db_path) if self.examples else None


def _game() -> Game:
    game = current_app.extensions.get("can_you_tell")
    if game is None:
        raise _NotAvailable("the Can you tell? game needs the workspace's test split: "
                            "serve with `twin serve --workspace W`")
    if not game.examples:
        raise _NotAvailable(game.problem)
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
    example: Example = random.SystemRandom().choice(game.examples)
    prompt = example.messages()
    twin = _twin_reply(prompt)
    shown = game.store.open_round(example.line, example.incoming, example.reply, twin)
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

"""``POST /feedback`` ``{"id": "<a reply's id>", "rating": 1 | -1 | "up" | "down"}``.

Only replies this server produced can be rated, by the caller that got them, and the text
stored is the server's own record of the exchange (server.reply_log): a client cannot submit
words to be learned. Ratings go to the feedback database (dataprocess.feedback), which
``twin process --feedback`` reads (cleaned by the data rules, capped).
"""
from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify

from dataprocess.feedback import FEEDBACK_FILE, FeedbackStore, good_replies

from .errors import error_response
from .schema import BadRequest, json_body
from .state import current

__all__ = ["FEEDBACK_FILE", "FeedbackStore", "blueprint", "good_replies"]

log = logging.getLogger("twin.server")
blueprint = Blueprint("feedback", __name__)
_TEXT_FIELDS = ("prompt", "reply", "messages", "history", "text", "response")


def _rating(value) -> int:
    if value in ("up", "down"):
        return 1 if value == "up" else -1
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, -1):
        return value
    raise BadRequest("'rating' must be 1 or -1 (or \"up\" / \"down\")")


@blueprint.post("/feedback")
def feedback():
    twin = current()
    if twin.feedback is None:
        return error_response("feedback is not enabled on this server (serve a --workspace or give --feedback-db)",
                              404)
    body = json_body('{"id": "reply-...", "rating": 1}')
    sent = [k for k in _TEXT_FIELDS if k in body]
    if sent:
        raise BadRequest(f"send only the reply's 'id' and a 'rating': the server takes the text from its own "
                         f"record ({', '.join(map(repr, sent))} not accepted)")
    rating = _rating(body.get("rating"))
    reply_id = body.get("id")
    if not isinstance(reply_id, str) or not 0 < len(reply_id) <= 64:
        raise BadRequest("'id' must be the id of a reply this server gave you")
    record = twin.replies.get(g.caller, reply_id)
    if record is None:
        return error_response("no reply with this id: only replies this server gave you (in the last day, "
                              "since it started) can be rated", 404)
    twin.feedback.add(record.id, record.context, record.incoming, record.reply, rating, record.conversation_id)
    log.info("feedback on %s: rating %+d", reply_id, rating)
    return jsonify(id=reply_id, rating=rating, stored=True), 201

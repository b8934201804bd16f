"""``POST /generate``: the twin's own API, the shape existing users call with curl.

``{"text": "..."}`` (optional ``history`` or ``conversation_id``, ``contact`` (who is texting:
a name or a contact group, also as the ``X-Twin-Contact`` header), ``temperature``,
``max_tokens``, ``top_p``, ``seed``, ``stop``, ``presence_penalty``, ``frequency_penalty``) ->
``{"id": "reply-...", "response": "yeah | bartaco?", "messages": ["yeah", "bartaco?"]}`` (plus
``conversation_id`` when one was sent: the server then keeps the history). The ``id`` is what
``POST /feedback`` rates.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from voice.replies import complete
from .reply_log import new_reply_id
from .schema import BadRequest, contact, conversation_id, decoding_changes, json_body, number, text_field, turns
from .state import current

blueprint = Blueprint("api", __name__)


@blueprint.post("/generate")
def generate():
    twin = current()
    body = json_body('{"text": "hello, how are you?"}')
    text = text_field(body, "text")
    max_tokens = number(body, "max_tokens", None, int, 1, twin.max_tokens_cap)
    decoding = twin.decoding().with_changes(max_tokens=max_tokens, **decoding_changes(body))
    cid = conversation_id(body)
    if cid and body.get("history") is not None:
        raise BadRequest("send either 'history' or 'conversation_id' (the server keeps the history), not both")
    history = twin.conversations.history(g.caller, cid) if cid else turns(body.get("history") or [], "history")
    reply = complete(twin.backend, twin.prompts.messages(history, text, contact(body)), decoding)
    reply_id = new_reply_id()
    twin.remember(g.caller, reply_id, history, text, reply, cid)
    twin.note("generate", text, reply)
    out = {"id": reply_id, "response": reply.text, "messages": reply.messages}
    if cid:
        twin.conversations.append(g.caller, cid, ("user", text), ("assistant", reply.text))
        out["conversation_id"] = cid
    return jsonify(out)

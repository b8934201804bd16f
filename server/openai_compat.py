"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and ``stream: true``), ``GET /v1/models``.

Any OpenAI client or chat bot can talk to the twin with ``base_url=URL/v1`` and the API key.

System messages: the twin always speaks with its own system line (the one it was trained
with), and a client's ``system``/``developer`` messages are ignored: a generic "You are a
helpful assistant" would pull the small model away from the voice it learned. ``tools`` and
``tool_choice`` are accepted and ignored (the twin cannot call tools), and so are ``tool``
messages and assistant messages that carry only tool calls. The other messages are the
conversation (the last must be the user's). Honoured: ``temperature``, ``top_p``, ``seed``,
``stop``, ``presence_penalty``, ``frequency_penalty``, and the ``X-Twin-Contact`` header as who is
texting (the twin answers in the voice it uses with them; not OpenAI's ``user``, which clients fill
with opaque ids); ``max_tokens`` /
``max_completion_tokens`` above the server's cap are lowered to it (clients often send large
defaults); ``n`` must be 1. Streaming sends ``data: {chunk}`` server-sent events and ends with
``data: [DONE]``; with ``stream_options.include_usage`` a last chunk carries the usage. The
terminator ``DONE`` never reaches the client, even split over tokens (voice.replies). An error
after the stream has started is sent as a last ``data: {"error": ...}`` event. The completion's
``id`` is what ``POST /feedback`` rates.
"""
from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, g, jsonify

from voice.queueing import Overloaded
from voice.replies import Reply, stream_visible
from .reply_log import new_reply_id
from .schema import BadRequest, contact, decoding_changes, json_body, number, turns
from .state import current

log = logging.getLogger("twin.server")
blueprint = Blueprint("openai", __name__, url_prefix="/v1")
CREATED = int(time.time())
_EXAMPLE = '{"model": "twin", "messages": [{"role": "user", "content": "hey"}]}'
_IGNORED_ROLES = ("system", "developer", "tool", "function")


@blueprint.get("/models")
def models():
    twin = current()
    return jsonify(object="list", data=[{"id": twin.model_name, "object": "model", "created": CREATED,
                                         "owned_by": "twin"}])


def _conversation(items) -> list[tuple[str, str]]:
    """The user/assistant turns of OpenAI ``messages`` (system, tool and tool-call-only ones left out)."""
    if not isinstance(items, list):
        raise BadRequest("'messages' must be a list of {\"role\", \"content\"} objects")
    kept = [m for m in items if not (isinstance(m, dict) and (
        m.get("role") in _IGNORED_ROLES or (m.get("role") == "assistant" and m.get("content") is None)))]
    return turns(kept, "messages")


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise BadRequest("'stream_options' must be an object like {\"include_usage\": true}")
    return options.get("include_usage", False)


@blueprint.post("/chat/completions")
def chat_completions():
    twin = current()
    body = json_body(_EXAMPLE)
    if "messages" not in body:
        raise BadRequest("'messages' is required: a list of {\"role\", \"content\"} objects")
    said = _conversation(body["messages"])
    if not said or said[-1][0] != "user" or not said[-1][1].strip():
        raise BadRequest("'messages' must end with a non-empty user message")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = number({"max_tokens": limit}, "max_tokens", None, int, 1, 1 << 30)
    decoding = twin.decoding().with_changes(**decoding_changes(body))
    decoding = decoding.with_changes(max_tokens=min(max_tokens or decoding.max_tokens, twin.max_tokens_cap))
    number(body, "n", 1, int, 1, 1)  # one choice only
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")
    usage = _include_usage(body)
    history, incoming = said[:-1], said[-1][1]
    stats: dict = {}
    who = contact(body, None)
    pieces = stream_visible(twin.backend, twin.prompts.messages(history, incoming, who), decoding, stats=stats)
    ident = new_reply_id("chatcmpl-")
    caller = g.caller

    def done(text: str) -> Reply:
        reply = Reply(text.strip(), stats.get("finish_reason", "stop"), stats.get("prompt_tokens", 0),
                      stats.get("completion_tokens", 0))
        twin.remember(caller, ident, history, incoming, reply)
        return reply

    if stream:
        return _sse(twin, ident, incoming, pieces, stats, done, usage)
    reply = done("".join(pieces))
    twin.note("chat.completions", incoming, reply)
    return jsonify({
        "id": ident, "object": "chat.completion", "created": int(time.time()), "model": twin.model_name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                     "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": _usage(reply),
    })


def _usage(reply: Reply) -> dict:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


class _Events:
    """The SSE body: closes the generation (and so frees the model) however the response ends."""

    def __init__(self, events, pieces):
        self.events, self.pieces = events, pieces

    def __iter__(self):
        return self.events

    def close(self):
        self.events.close()
        self.pieces.close()


def _sse(twin, ident: str, incoming: str, pieces, stats: dict, done, include_usage: bool) -> Response:
    # Wait for the model now, while a 503 can still be an ordinary JSON response.
    try:
        first = next(pieces)
    except StopIteration:
        first = None

    created, model = int(time.time()), twin.model_name

    def chunk(delta: dict | None, finish=None, usage=None) -> str:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish,
                                                      "logprobs": None}]}
        if include_usage:
            data["usage"] = usage
        return "data: " + json.dumps(data, ensure_ascii=False) + "\n\n"

    def events():
        text = []
        yield chunk({"role": "assistant", "content": ""})
        try:
            if first is not None:
                text.append(first)
                yield chunk({"content": first})
                for piece in pieces:
                    text.append(piece)
                    yield chunk({"content": piece})
        except Overloaded as exc:  # the generation ran past its deadline
            log.warning("chat.completions stream: %s", exc)
            yield "data: " + json.dumps({"error": {"message": str(exc), "code": exc.status}}) + "\n\n"
            yield "data: [DONE]\n\n"
            return
        except Exception as exc:  # noqa: BLE001 - the status line is sent: report in the stream
            log.error("chat.completions stream failed: %s", type(exc).__name__)
            yield "data: " + json.dumps({"error": {"message": "internal error while generating", "code": 500}}) + "\n\n"
            yield "data: [DONE]\n\n"
            return
        reply = done("".join(text))
        yield chunk({}, reply.finish_reason)
        if include_usage:
            yield chunk(None, usage=_usage(reply))
        yield "data: [DONE]\n\n"
        twin.note("chat.completions stream", incoming, reply)

    return Response(_Events(events(), pieces), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

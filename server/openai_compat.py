"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and ``stream: true``), ``GET /v1/models``.

Any OpenAI client or chat bot can talk to the twin with ``base_url=URL/v1`` and the API key.

System messages: the twin always speaks with its own system line (the one it was trained
with, dataprocess.template.prompt_messages), and a client's ``system``/``developer`` messages
are ignored: a generic "You are a helpful assistant" would pull the small model away from the
voice it learned. The other messages are the conversation (the last must be the user's);
``max_tokens`` / ``max_completion_tokens`` above the server's cap are lowered to it (clients
often send large defaults); ``n`` must be 1. Streaming sends ``data: {chunk}`` server-sent
events and ends with ``data: [DONE]``; the terminator ``DONE`` never reaches the client, even
split over tokens (server.replies). An error after the stream has started is sent as a last
``data: {"error": ...}`` event.
"""
from __future__ import annotations

import json
import logging
import secrets
import time

from flask import Blueprint, Response, jsonify

from .queueing import Overloaded
from .replies import Reply, stream_visible
from .schema import BadRequest, json_body, number, turns

log = logging.getLogger("twin.server")
blueprint = Blueprint("openai", __name__, url_prefix="/v1")
CREATED = int(time.time())
_EXAMPLE = '{"model": "twin", "messages": [{"role": "user", "content": "hey"}]}'


def _state():
    from .app import state

    return state()


def _model_name(twin) -> str:
    return getattr(twin.backend, "name", "twin")


@blueprint.get("/models")
def models():
    twin = _state()
    return jsonify(object="list", data=[{"id": _model_name(twin), "object": "model", "created": CREATED,
                                         "owned_by": "twin"}])


@blueprint.post("/chat/completions")
def chat_completions():
    twin = _state()
    body = json_body(_EXAMPLE)
    if "messages" not in body:
        raise BadRequest("'messages' is required: a list of {\"role\", \"content\"} objects")
    said = turns(body["messages"], "messages", roles=("system", "developer", "user", "assistant"))
    said = [(role, text) for role, text in said if role in ("user", "assistant")]
    if not said or said[-1][0] != "user" or not said[-1][1].strip():
        raise BadRequest("'messages' must end with a non-empty user message")
    temperature = number(body, "temperature", 0.7, float, 0.0, 2.0)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = number({"max_tokens": limit}, "max_tokens", 64, int, 1, 1 << 30)
    max_tokens = min(max_tokens, twin.max_tokens_cap)
    number(body, "n", 1, int, 1, 1)  # one choice only
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")
    messages = twin.prompt(said[:-1], said[-1][1])
    stats: dict = {}
    pieces = stream_visible(twin.backend, messages, temperature=temperature, max_tokens=max_tokens, stats=stats)
    ident = "chatcmpl-" + secrets.token_hex(12)
    if stream:
        return _sse(twin, ident, said[-1][1], pieces, stats)
    reply = Reply("".join(pieces), stats.get("finish_reason", "stop"), stats.get("prompt_tokens", 0),
                  stats.get("completion_tokens", 0))
    twin.note("chat.completions", said[-1][1], reply)
    return jsonify({
        "id": ident, "object": "chat.completion", "created": int(time.time()), "model": _model_name(twin),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                     "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                  "total_tokens": reply.prompt_tokens + reply.completion_tokens},
    })


class _Events:
    """The SSE body: closes the generation (and so frees the model) however the response ends."""

    def __init__(self, events, pieces):
        self.events, self.pieces = events, pieces

    def __iter__(self):
        return self.events

    def close(self):
        self.events.close()
        self.pieces.close()


def _sse(twin, ident: str, incoming: str, pieces, stats: dict) -> Response:
    # Wait for the model now, while a 503 can still be an ordinary JSON response.
    try:
        first = next(pieces)
    except StopIteration:
        first = None

    created, model = int(time.time()), _model_name(twin)

    def chunk(delta: dict, finish=None) -> str:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
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
        yield chunk({}, stats.get("finish_reason", "stop"))
        yield "data: [DONE]\n\n"
        twin.note("chat.completions stream", incoming,
                  Reply("".join(text), stats.get("finish_reason", "stop"), 0, stats.get("completion_tokens", 0)))

    return Response(_Events(events(), pieces), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

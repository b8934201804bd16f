"""Request validation shared by the routes: every bad field becomes a :class:`BadRequest` (400).

The helpers read one JSON body and either return clean Python values or raise with a message
that names the field and what it must be, so a client can fix its request without reading code.

A lone UTF-16 surrogate escape (``"\\ud800"``: valid JSON, and what a browser's ``JSON.stringify``
writes for a string whose emoji was cut in half) is mended as the export readers mend it
(dataprocess.readers._json_repair): U+FFFD in place of the broken half, in every string of the
body (keys too), so the text is kept and nothing later chokes on it (it cannot be encoded).
"""
from __future__ import annotations

import json
import math
import re

from flask import request

MAX_TEXT_CHARS = 4000        # one incoming message
MAX_HISTORY_ITEMS = 64       # turns a client may send along
MAX_HISTORY_CHARS = 16000    # all of them together
MAX_JSON_DEPTH = 16          # arrays / objects inside each other (the API needs 4)
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")   # json joins a valid pair into one character
REPLACEMENT = "\ufffd"


class BadRequest(ValueError):
    """A request body the API cannot use; becomes a 400 JSON reply."""


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise _NotFinite(text)
    return value


def _constant(name: str):
    raise _NotFinite(name)  # NaN, Infinity, -Infinity: Python's json accepts them, JSON does not


def _too_deep(value) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return False


def _mend(value):
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, list):
        return [_mend(item) for item in value]
    if isinstance(value, dict):
        return {_mend(key): _mend(item) for key, item in value.items()}
    return value


def json_body(example: str) -> dict:
    """The request's JSON object (strict JSON: finite numbers, bounded nesting), or a 400
    naming what to send instead."""
    hint = f"send a JSON object like {example} with Content-Type: application/json"
    if not request.is_json:
        raise BadRequest(hint)
    try:
        body = json.loads(request.get_data(cache=True), parse_constant=_constant, parse_float=_finite)
    except _NotFinite:
        raise BadRequest("numbers must be finite: NaN and Infinity are not JSON") from None
    except RecursionError:
        raise BadRequest(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:  # also UnicodeDecodeError
        raise BadRequest(hint) from None
    if _too_deep(body):
        raise BadRequest(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    if not isinstance(body, dict):
        raise BadRequest(hint)
    return _mend(body)


def number(body: dict, key: str, default, kind, low, high):
    """``body[key]`` as ``kind`` within ``[low, high]`` (``default`` when absent or null)."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"'{key}' must be a number")
    if kind is int and value != int(value):
        raise BadRequest(f"'{key}' must be a whole number")
    if not low <= value <= high:
        raise BadRequest(f"'{key}' must be between {low} and {high}")
    return kind(value)


def text_field(body: dict, key: str, limit: int = MAX_TEXT_CHARS, required: bool = True) -> str | None:
    """A non-empty string field of at most ``limit`` characters, stripped."""
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise BadRequest(f"'{key}' is longer than {limit} characters")
    return value.strip()


def content_text(content, where: str) -> str:
    """A message's content: a string, or OpenAI's list of ``{"type": "text", "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = [p.get("text") for p in content if p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts) and len(parts) == len(content):
            return "".join(parts)
        raise BadRequest(f"{where}: only text content parts are supported")
    raise BadRequest(f"{where}: 'content' must be a string")


def turns(items, key: str, roles=("user", "assistant")) -> list[tuple[str, str]]:
    """A list of ``{"role", "content"}`` objects as ``(role, text)`` pairs, bounded in size."""
    if not isinstance(items, list):
        raise BadRequest(f"'{key}' must be a list of {{\"role\", \"content\"}} objects")
    if len(items) > MAX_HISTORY_ITEMS:
        raise BadRequest(f"'{key}' holds more than {MAX_HISTORY_ITEMS} messages")
    out, total = [], 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("role") not in roles:
            raise BadRequest(f"each '{key}' item needs 'role' ({' or '.join(map(repr, roles))}) "
                             "and 'content' (a string)")
        text = content_text(item.get("content"), f"'{key}'[{i}]")
        total += len(text)
        out.append((item["role"], text))
    if total > MAX_HISTORY_CHARS:
        raise BadRequest(f"'{key}' is longer than {MAX_HISTORY_CHARS} characters in all")
    return out


MAX_CONTACT_CHARS = 80
CONTACT_HEADER = "X-Twin-Contact"


def contact(body: dict, key: str | None = "contact") -> str | None:
    """Who is texting the twin, so it answers in the voice it uses with them: the body's ``key``
    (``contact`` on /generate) or the ``X-Twin-Contact`` header; a name or one of the twin's
    contact groups (``dataprocess.memory``). The OpenAI route reads the header only: clients
    fill OpenAI's ``user`` with opaque ids for abuse tracking, which are nobody's name."""
    from flask import request

    value = body.get(key) if key else None
    if value is None:
        value = request.headers.get(CONTACT_HEADER)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CONTACT_CHARS or not value.isprintable():
        where = f"'{key}' (or the {CONTACT_HEADER} header)" if key else f"the {CONTACT_HEADER} header"
        raise BadRequest(f"{where} must be a name of at most {MAX_CONTACT_CHARS} printable characters")
    return value.strip() or None


def conversation_id(body: dict) -> str | None:
    """The optional ``conversation_id``: 1-128 letters, digits or ``_.:-``."""
    value = body.get("conversation_id")
    if value is None:
        return None
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise BadRequest("'conversation_id' must be 1-128 letters, digits or _.:- characters")
    return value


def stop_strings(body: dict) -> tuple[str, ...] | None:
    """OpenAI's ``stop``: a string or a list of at most 4 non-empty strings (64 characters each)."""
    value = body.get("stop")
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > 4 or \
            not all(isinstance(s, str) and 0 < len(s) <= 64 for s in items):
        raise BadRequest("'stop' must be a string or a list of at most 4 strings of 1-64 characters")
    return tuple(items)


def decoding_changes(body: dict) -> dict:
    """The sampling fields a request may set (absent ones are None: the twin's defaults stay)."""
    return {
        "temperature": number(body, "temperature", None, float, 0.0, 2.0),
        "top_p": number(body, "top_p", None, float, 0.0, 1.0),
        "presence_penalty": number(body, "presence_penalty", None, float, -2.0, 2.0),
        "frequency_penalty": number(body, "frequency_penalty", None, float, -2.0, 2.0),
        "seed": number(body, "seed", None, int, -(2 ** 63), 2 ** 63 - 1),
        "stop": stop_strings(body),
    }

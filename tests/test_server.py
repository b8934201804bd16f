"""The HTTP API (Flask test client): /generate over a real tiny GGUF and a scripted backend,
conversations, every error path, auth, rate limit, CORS, logs, queueing and timeouts."""
import json
import logging
import random
import threading

import pytest

from core.terminator import DONE, strip_terminator
from server.app import MAX_TOKENS_CAP, create_app
from server.backends import BackendError, LlamaCppBackend
from server.conversations import ConversationStore
from server.queueing import Gate
from server.ratelimit import RateLimiter
from server.replies import TerminatorFilter
from test_server_support import ScriptedBackend


@pytest.fixture(scope="module")
def backend(tiny_gguf):
    return LlamaCppBackend(tiny_gguf, threads=1, context=512)


def client_for(backend, **kwargs):
    return create_app(backend, persona="maya", **kwargs).test_client()


# --- /generate -------------------------------------------------------------------------------

def test_generate_returns_response_and_messages(backend):
    reply = client_for(backend).post("/generate", json={"text": "hello, how are you?", "max_tokens": 8})
    assert reply.status_code == 200
    body = reply.get_json()
    assert set(body) == {"response", "messages"}
    assert isinstance(body["response"], str) and isinstance(body["messages"], list)
    assert DONE not in body["response"]


def test_done_is_stripped_and_pipes_split():
    scripted = ScriptedBackend()
    body = client_for(scripted).post("/generate", json={"text": "Tacos?", "max_tokens": 4,
                                                        "temperature": 0.2}).get_json()
    assert body == {"response": "yeah | bartaco?", "messages": ["yeah", "bartaco?"]}
    messages, kwargs = scripted.calls[0]
    assert messages[0]["role"] == "system" and "maya" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "tacos?"}  # lowercased like the training data
    assert kwargs == {"temperature": 0.2, "max_tokens": 4}


def test_history_is_passed_as_turns():
    scripted = ScriptedBackend()
    history = [{"role": "user", "content": "hey"}, {"role": "assistant", "content": "hiii"}]
    client_for(scripted).post("/generate", json={"text": "tacos?", "history": history})
    assert [m["role"] for m in scripted.calls[0][0]] == ["system", "user", "assistant", "user"]


def test_conversation_id_keeps_history_on_the_server():
    scripted = ScriptedBackend(["omg hiii | u?", " DONE"])
    client = client_for(scripted)
    first = client.post("/generate", json={"text": "hey", "conversation_id": "c1"}).get_json()
    assert first == {"response": "omg hiii | u?", "messages": ["omg hiii", "u?"], "conversation_id": "c1"}
    client.post("/generate", json={"text": "Tacos?", "conversation_id": "c1"})
    assert scripted.calls[1][0][1:] == [{"role": "user", "content": "hey"},
                                        {"role": "assistant", "content": "omg hiii | u?"},
                                        {"role": "user", "content": "tacos?"}]
    client.post("/generate", json={"text": "other", "conversation_id": "c2"})
    assert len(scripted.calls[2][0]) == 2  # a new conversation starts empty
    both = client.post("/generate", json={"text": "x", "conversation_id": "c1", "history": []})
    assert both.status_code == 400 and "not both" in both.get_json()["error"]


def test_conversations_are_namespaced_by_caller():
    scripted = ScriptedBackend(["hi"])
    client = client_for(scripted)
    client.post("/generate", json={"text": "secret", "conversation_id": "c"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    client.post("/generate", json={"text": "hey", "conversation_id": "c"}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert "secret" not in json.dumps(scripted.calls[1][0])


def test_conversation_store_is_bounded_and_expires():
    now = [0.0]
    store = ConversationStore(max_conversations=2, max_turns=3, ttl=60, clock=lambda: now[0])
    store.append("k", "a", ("user", "1"), ("assistant", "2"), ("user", "3"), ("assistant", "4"))
    assert store.history("k", "a") == [("assistant", "2"), ("user", "3"), ("assistant", "4")]
    store.append("k", "b", ("user", "b"))
    store.history("k", "a")
    store.append("k", "a", ("user", "5"))  # a is now the most recently used
    store.append("k", "c", ("user", "c"))  # evicts b
    assert store.history("k", "b") == [] and len(store) == 2
    now[0] = 61
    assert store.history("k", "a") == [] and len(store) == 0


def test_prompt_too_long_for_context_is_a_400(backend):
    reply = client_for(backend).post("/generate", json={"text": " ".join(f"w{i}q" for i in range(500))})
    assert reply.status_code == 400 and "too long" in reply.get_json()["error"]


def test_generation_stops_on_done_in_real_backend(backend):
    result = backend.generate([{"role": "user", "content": "hi"}], max_tokens=16, temperature=1.0)
    assert DONE not in result.text and result.finish_reason in ("stop", "length")


# --- the terminator filter -------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "yeah | bartaco? DONE junk", "  hi DONE", "DONE", "hi DON", "hi DONEs", "i am DONE.", "xDONE yes",
    "ok D", "so DO NE", "ok\n DONE\nmore", "ya   ", "", "fine DONE DONE", "🙂 DONE", "wait DONE",
])
def test_terminator_filter_matches_strip_terminator_for_any_split(text):
    rng = random.Random(text)
    for _ in range(30):
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 4))))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        filt = TerminatorFilter()
        shown = [filt.feed(p) for p in pieces] + [filt.finish()]
        # What was shown adds up to the stripped reply: no piece of the terminator ever went out.
        assert "".join(shown) == strip_terminator(text), pieces


# --- errors, auth, limits --------------------------------------------------------------------

@pytest.mark.parametrize("path, kwargs, status, fragment", [
    ("/generate", {"data": "not json", "content_type": "application/json"}, 400, "JSON object"),
    ("/generate", {"data": "text=hi"}, 400, "JSON object"),
    ("/generate", {"json": ["a list"]}, 400, "JSON object"),
    ("/generate", {"json": {}}, 400, "'text'"),
    ("/generate", {"json": {"text": 5}}, 400, "'text'"),
    ("/generate", {"json": {"text": "   "}}, 400, "'text'"),
    ("/generate", {"json": {"text": "x" * 5000}}, 400, "'text'"),
    ("/generate", {"json": {"text": "hi", "max_tokens": MAX_TOKENS_CAP + 1}}, 400, "max_tokens"),
    ("/generate", {"json": {"text": "hi", "max_tokens": "5"}}, 400, "max_tokens"),
    ("/generate", {"json": {"text": "hi", "max_tokens": 2.5}}, 400, "max_tokens"),
    ("/generate", {"json": {"text": "hi", "temperature": 9}}, 400, "temperature"),
    ("/generate", {"json": {"text": "hi", "temperature": True}}, 400, "temperature"),
    ("/generate", {"json": {"text": "hi", "history": "hey"}}, 400, "history"),
    ("/generate", {"json": {"text": "hi", "history": [{"role": "bot", "content": "x"}]}}, 400, "history"),
    ("/generate", {"json": {"text": "hi", "history": [{"role": "user", "content": 3}]}}, 400, "content"),
    ("/generate", {"json": {"text": "hi", "conversation_id": "a b"}}, 400, "conversation_id"),
    ("/generate", {"json": {"text": "hi", "conversation_id": 7}}, 400, "conversation_id"),
    ("/generate", {"json": {"text": "x" * 100_000}}, 413, "larger than"),
    ("/v1/chat/completions", {"json": {}}, 400, "'messages'"),
    ("/v1/chat/completions", {"json": {"messages": "hi"}}, 400, "'messages'"),
    ("/v1/chat/completions", {"json": {"messages": []}}, 400, "user message"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "assistant", "content": "hi"}]}}, 400, "user message"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "tool", "content": "x"}]}}, 400, "'messages'"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}},
     400, "text content"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}},
     400, "'stream'"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "n": 2}}, 400, "'n'"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}},
     400, "max_tokens"),
    ("/feedback", {"json": {"prompt": "hi", "reply": "yo"}}, 400, "'rating'"),
    ("/feedback", {"json": {"prompt": "hi", "reply": "yo", "rating": 5}}, 400, "'rating'"),
    ("/feedback", {"json": {"prompt": "hi", "reply": "yo", "rating": True}}, 400, "'rating'"),
    ("/feedback", {"json": {"prompt": "hi", "rating": 1}}, 400, "'reply'"),
    ("/feedback", {"json": {"reply": "yo", "rating": 1}}, 400, "'prompt'"),
    ("/feedback", {"json": {"messages": [{"role": "assistant", "content": "x"}], "reply": "yo", "rating": 1}},
     400, "'messages'"),
])
def test_bad_requests_get_json_4xx(tmp_path, path, kwargs, status, fragment):
    reply = client_for(ScriptedBackend(), feedback_db=tmp_path / "f.sqlite").post(path, **kwargs)
    assert reply.status_code == status
    assert reply.is_json and fragment in reply.get_json()["error"]


def test_unknown_route_and_wrong_method_are_json():
    client = client_for(ScriptedBackend())
    for reply, status in [(client.get("/nope"), 404), (client.get("/generate"), 405),
                          (client.put("/v1/chat/completions"), 405), (client.post("/health"), 405),
                          (client.delete("/"), 405)]:
        assert reply.status_code == status and reply.is_json and reply.get_json()["error"]


def test_internal_error_is_json_without_traceback():
    class Broken(ScriptedBackend):
        def _pieces(self, *args):
            raise RuntimeError("boom at /secret/path")
            yield  # pragma: no cover

    reply = client_for(Broken()).post("/generate", json={"text": "hi"})
    assert reply.status_code == 500 and reply.get_json() == {"error": "internal error while generating"}


def test_api_key_protects_everything_but_health_and_the_page():
    client = client_for(ScriptedBackend(), api_key="s3cret")
    assert client.get("/health").status_code == 200
    assert client.get("/").status_code == 200  # static page, no data: the browser must load it to ask for the key
    for method, path in [("post", "/generate"), ("get", "/v1/models"), ("post", "/v1/chat/completions"),
                         ("post", "/feedback"), ("get", "/nope")]:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}):
            reply = getattr(client, method)(path, json={"text": "hi"}, headers=headers)
            assert reply.status_code == 401 and "API key" in reply.get_json()["error"], (path, headers)
    right = {"Authorization": "Bearer s3cret"}
    assert client.post("/generate", json={"text": "hi"}, headers=right).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "bearer s3cret"}).status_code == 200
    assert client.get("/nope", headers=right).status_code == 404


def test_rate_limit_per_caller_with_retry_after():
    client = client_for(ScriptedBackend(["hi"]), rate_limit="2/min")
    ip = {"REMOTE_ADDR": "10.0.0.1"}
    codes = [client.post("/generate", json={"text": "hi"}, environ_base=ip).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.post("/generate", json={"text": "hi"}, environ_base=ip)
    assert limited.get_json()["error"].startswith("rate limit") and int(limited.headers["Retry-After"]) >= 1
    assert client.post("/generate", json={"text": "hi"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200
    assert client.get("/health", environ_base=ip).status_code == 200  # never limited


def test_rate_limiter_refills_and_parses():
    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    assert [limiter.check("a") for _ in range(2)] == [0, 0]
    assert limiter.check("a") == pytest.approx(30)
    now[0] = 30
    assert limiter.check("a") == 0
    assert RateLimiter.parse("off") is None and RateLimiter.parse("5/s").rate == 5
    assert RateLimiter.parse("120/minute").capacity == 120 and RateLimiter.parse("10/hours").rate == pytest.approx(10 / 3600)
    with pytest.raises(ValueError):
        RateLimiter.parse("lots")


def test_cors_is_off_unless_asked():
    plain = client_for(ScriptedBackend())
    reply = plain.post("/generate", json={"text": "hi"}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in reply.headers
    client = client_for(ScriptedBackend(), api_key="k", cors_origins=["https://app.example"])
    preflight = client.options("/v1/chat/completions", headers={"Origin": "https://app.example",
                                                                "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert client.options("/generate", headers={"Origin": "https://evil.example"}).status_code == 403
    ok = client.post("/generate", json={"text": "hi"}, headers={"Origin": "https://app.example",
                                                                "Authorization": "Bearer k"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = client.post("/generate", json={"text": "hi"}, headers={"Origin": "https://evil.example",
                                                                   "Authorization": "Bearer k"})
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize("log_requests", [False, True])
def test_no_message_text_in_logs_unless_asked(caplog, tmp_path, log_requests):
    client = client_for(ScriptedBackend(["zebrareply DONE"]), log_requests=log_requests,
                        feedback_db=tmp_path / "f.sqlite")
    with caplog.at_level(logging.DEBUG):
        client.post("/generate", json={"text": "my private giraffe"})
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "my private giraffe"}]})
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "my private giraffe"}],
                                                  "stream": True}).get_data()
        client.post("/feedback", json={"prompt": "my private giraffe", "reply": "zebrareply", "rating": 1})
    logged = caplog.text.lower()
    assert "generate" in logged
    assert ("giraffe" in logged and "zebrareply" in logged) == log_requests
    assert ("giraffe" in logged or "zebrareply" in logged) == log_requests


# --- queueing and timeouts -------------------------------------------------------------------

def test_full_queue_and_long_wait_are_503_with_retry_after():
    full = ScriptedBackend(gate=Gate(max_waiting=0, wait_timeout=5))
    slow = ScriptedBackend(gate=Gate(max_waiting=4, wait_timeout=0.2))
    for scripted, fragment in [(full, "already queued"), (slow, "waited")]:
        with scripted.gate.hold():  # another request is generating
            reply = client_for(scripted).post("/generate", json={"text": "hi"})
        assert reply.status_code == 503 and fragment in reply.get_json()["error"]
        assert reply.headers["Retry-After"]
        assert client_for(scripted).post("/generate", json={"text": "hi"}).status_code == 200  # free again


def test_generation_timeout_is_504_and_frees_the_model():
    scripted = ScriptedBackend(["a"] * 50, delay=0.02, timeout=0.1)
    client = client_for(scripted)
    reply = client.post("/generate", json={"text": "hi", "max_tokens": 50})
    assert reply.status_code == 504 and "longer than" in reply.get_json()["error"]
    stream = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                       "max_tokens": 50, "stream": True})
    events = stream.get_data(as_text=True)
    assert stream.status_code == 200 and '"error"' in events and events.endswith("data: [DONE]\n\n")
    scripted.pieces = ["ok"]
    assert client.post("/generate", json={"text": "hi"}).get_json()["response"] == "ok"


def test_requests_queue_on_one_model_from_many_threads(backend):
    client_app = create_app(backend, persona="maya")
    results = []

    def ask():
        results.append(client_app.test_client().post("/generate", json={"text": "hi", "max_tokens": 4}).status_code)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [200] * 6


# --- health, page, missing model -------------------------------------------------------------

def test_health_and_page(tmp_path):
    client = client_for(ScriptedBackend(), feedback_db=tmp_path / "f.sqlite")
    assert client.get("/health").get_json() == {"status": "ok", "model": "scripted", "feedback": True}
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/generate" in html and "http://" not in html and "https://" not in html  # self-contained, no CDN


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        LlamaCppBackend(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf")
    with pytest.raises(BackendError, match="cannot load"):
        LlamaCppBackend(junk)

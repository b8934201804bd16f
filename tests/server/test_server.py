"""The HTTP API (Flask test client): /generate over a real tiny GGUF and a scripted backend,
conversations, every error path, auth, rate limit, CORS, logs, queueing and timeouts, and no
empty replies."""
import json
import logging
import random
import threading

import pytest

from core.terminator import DONE, find_terminator, strip_terminator
from server.app import MAX_TOKENS_CAP, create_app
from server.backends import BackendError, LlamaCppBackend
from server.conversations import ConversationStore
from voice.queueing import Gate
from server.ratelimit import RateLimiter
from voice.replies import StopFilter, TerminatorFilter
from helpers.server import ScriptedBackend


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
    assert set(body) == {"id", "response", "messages"} and body["id"].startswith("reply-")
    assert isinstance(body["response"], str) and isinstance(body["messages"], list)
    assert DONE not in body["response"]


def test_done_is_stripped_and_pipes_split():
    scripted = ScriptedBackend()
    body = client_for(scripted).post("/generate", json={"text": "Tacos?", "max_tokens": 4,
                                                        "temperature": 0.2}).get_json()
    assert body == {"id": body["id"], "response": "yeah | bartaco?", "messages": ["yeah", "bartaco?"]}
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
    assert first == {"id": first["id"], "response": "omg hiii | u?", "messages": ["omg hiii", "u?"],
                     "conversation_id": "c1"}
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


def test_reply_log_is_bounded_expires_and_keeps_each_callers_own():
    from server.reply_log import ReplyLog, ReplyRecord

    now = [0.0]
    log = ReplyLog(max_records=2, ttl=100, clock=lambda: now[0])
    for name in ("r1", "r2", "r3"):
        log.add(ReplyRecord(name, "alice", (), "hi", "yo"))
        now[0] += 10
    assert log.get("alice", "r1") is None and len(log) == 2  # the oldest one made room
    assert log.get("alice", "r3").reply == "yo" and log.get("bob", "r3") is None
    now[0] = 115  # r2 was added at 10: gone; r3 at 20: still there
    assert log.get("alice", "r2") is None and log.get("alice", "r3") is not None and len(log) == 1


def test_prompt_too_long_for_context_is_a_400(backend):
    reply = client_for(backend).post("/generate", json={"text": " ".join(f"w{i}q" for i in range(500))})
    assert reply.status_code == 400 and "too long" in reply.get_json()["error"]


def test_generation_stops_on_done_in_real_backend(backend):
    for seed in range(5):
        result = backend.generate([{"role": "user", "content": "hi"}], max_tokens=16, temperature=1.0, seed=seed)
        at = find_terminator(result.text)
        assert at is None or result.text[at:] == DONE  # generation ends right at the terminator
        assert result.finish_reason in ("stop", "length") and result.completion_tokens <= 16


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
    ("/v1/chat/completions", {"json": {"messages": [{"role": "tool", "content": "x"}]}}, 400, "user message"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "robot", "content": "x"}]}}, 400, "'messages'"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}},
     400, "text content"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}},
     400, "'stream'"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "n": 2}}, 400, "'n'"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}},
     400, "max_tokens"),
    ("/feedback", {"json": {"id": "reply-1"}}, 400, "'rating'"),
    ("/feedback", {"json": {"id": "reply-1", "rating": 5}}, 400, "'rating'"),
    ("/feedback", {"json": {"id": "reply-1", "rating": True}}, 400, "'rating'"),
    ("/feedback", {"json": {"rating": 1}}, 400, "'id'"),
    ("/feedback", {"json": {"id": 7, "rating": 1}}, 400, "'id'"),
    ("/feedback", {"json": {"id": "reply-1", "rating": 1}}, 404, "no reply with this id"),
    ("/feedback", {"json": {"prompt": "hi", "reply": "yo", "rating": 1}}, 400, "own record"),
    ("/generate", {"data": '{"text": "hi", "max_tokens": Infinity}', "content_type": "application/json"},
     400, "finite"),
    ("/generate", {"data": '{"text": "hi", "temperature": NaN}', "content_type": "application/json"},
     400, "finite"),
    ("/generate", {"data": '{"text": "hi", "temperature": 1e999}', "content_type": "application/json"},
     400, "finite"),
    ("/generate", {"data": '{"text": "hi", "x": ' + "[" * 5000 + "]" * 5000 + "}",
                   "content_type": "application/json"}, 400, "nested"),
    ("/generate", {"data": '{"text": "hi", "x": ' + "[" * 20 + "]" * 20 + "}",
                   "content_type": "application/json"}, 400, "nested"),
    ("/generate", {"json": {"text": "hi", "stop": ["a", "b", "c", "d", "e"]}}, 400, "'stop'"),
    ("/generate", {"json": {"text": "hi", "top_p": 2}}, 400, "top_p"),
    ("/generate", {"json": {"text": "hi", "seed": 1.5}}, 400, "seed"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "presence_penalty": 3}},
     400, "presence_penalty"),
    ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}],
                                       "stream_options": "usage"}}, 400, "stream_options"),
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
    client = client_for(ScriptedBackend(), api_key="s3cret-key")
    assert client.get("/health").status_code == 200
    assert client.get("/").status_code == 200  # static page, no data: the browser must load it to ask for the key
    assert client.head("/").status_code == 200
    for n, (method, path) in enumerate([("post", "/generate"), ("get", "/v1/models"),
                                        ("post", "/v1/chat/completions"), ("post", "/feedback"), ("get", "/nope"),
                                        ("get", "/metrics")]):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret-key"}):
            reply = getattr(client, method)(path, json={"text": "hi"}, headers=headers,
                                            environ_base={"REMOTE_ADDR": f"10.1.{n}.1"})
            assert reply.status_code == 401 and "API key" in reply.get_json()["error"], (path, headers)
    right = {"Authorization": "Bearer s3cret-key"}
    assert client.post("/generate", json={"text": "hi"}, headers=right).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "bearer s3cret-key"}).status_code == 200
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
    client = client_for(ScriptedBackend(), api_key="key-12345", cors_origins=["https://app.example"])
    preflight = client.options("/v1/chat/completions", headers={"Origin": "https://app.example",
                                                                "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert client.options("/generate", headers={"Origin": "https://evil.example"}).status_code == 403
    ok = client.post("/generate", json={"text": "hi"}, headers={"Origin": "https://app.example",
                                                                "Authorization": "Bearer key-12345"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = client.post("/generate", json={"text": "hi"}, headers={"Origin": "https://evil.example",
                                                                   "Authorization": "Bearer key-12345"})
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize("log_requests", [False, True])
def test_no_message_text_in_logs_unless_asked(caplog, tmp_path, log_requests):
    client = client_for(ScriptedBackend(["zebrareply DONE"]), log_requests=log_requests,
                        feedback_db=tmp_path / "f.sqlite")
    with caplog.at_level(logging.DEBUG):
        rid = client.post("/generate", json={"text": "my private giraffe"}).get_json()["id"]
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "my private giraffe"}]})
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "my private giraffe"}],
                                                  "stream": True}).get_data()
        assert client.post("/feedback", json={"id": rid, "rating": 1}).status_code == 201
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
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "/generate" in html and "http://" not in html and "https://" not in html  # self-contained, no CDN


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        LlamaCppBackend(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf")
    with pytest.raises(BackendError, match="cannot load"):
        LlamaCppBackend(junk)


# --- no empty replies ----------------------------------------------------------------------------

def test_an_empty_reply_is_generated_again_with_another_seed():
    scripted = ScriptedBackend(replies=[[" DONE"], [" | ", "DONE"], ["ok | ", "sure DONE"]])
    body = client_for(scripted).post("/generate", json={"text": "hi", "seed": 7}).get_json()
    assert body["messages"] == ["ok", "sure"] and len(scripted.calls) == 3
    assert [d.seed for d in scripted.decodings] == [7, 8, 9]


def test_a_reply_empty_in_every_try_is_a_503_not_an_empty_200():
    scripted = ScriptedBackend([" DONE"])
    client = client_for(scripted)
    reply = client.post("/generate", json={"text": "hi"})
    assert reply.status_code == 503 and "no reply" in reply.get_json()["error"] and reply.headers["Retry-After"]
    assert len(scripted.calls) == 3  # a bounded number of tries
    stream = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                       "stream": True})
    assert stream.status_code == 503 and stream.is_json  # nothing was sent before the retries ran out


def test_first_token_cannot_end_the_reply_in_llama_cpp(tiny_gguf):
    backend = LlamaCppBackend(tiny_gguf, threads=1, context=512)
    try:
        done = backend.llm.tokenize(b" DONE", add_bos=False, special=False)
        assert backend.llm.token_eos() in backend.first_banned and done[0] in backend.first_banned
        # The ban works on the logits: with every token but "a" banned, greedy's first token is "a".
        (a,) = backend.llm.tokenize(b"a", add_bos=False, special=False)
        backend.workers[0].first_banned = [t for t in range(backend.llm.n_vocab()) if t != a]
        forced = backend.generate([{"role": "user", "content": "hi"}], temperature=0, max_tokens=1)
        assert forced.text == "a" and forced.completion_tokens == 1
    finally:
        backend.close()


# --- stop strings --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, stops, shown", [
    ("yeah | bartaco? later", ("taco",), "yeah | bar"), ("abc", ("x",), "abc"), ("one two", ("two", "one"), ""),
    ("hello world", ("lo w", "world"), "hel"), ("aaab", ("aab",), "a"),
])
def test_stop_filter_for_any_split(text, stops, shown):
    rng = random.Random(text)
    for _ in range(30):
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 4))))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        filt = StopFilter(stops)
        assert "".join([filt.feed(p) for p in pieces] + [filt.finish()]) == shown, pieces


def test_stop_seed_and_penalties_reach_the_backend():
    scripted = ScriptedBackend(["sure | ", "see u at", " 7 DONE"])
    client = client_for(scripted)
    body = client.post("/generate", json={"text": "hi", "stop": "at", "seed": 3, "top_p": 0.5,
                                          "presence_penalty": 0.5, "frequency_penalty": -0.5}).get_json()
    assert body["response"] == "sure | see u"
    decoding = scripted.decodings[-1]
    assert (decoding.seed, decoding.top_p, decoding.presence_penalty, decoding.frequency_penalty) == (3, 0.5, 0.5, -0.5)
    assert decoding.stop == ("at",)


def test_decoding_defaults_come_from_the_twins_sampling():
    from core.settings import Sampling

    scripted = ScriptedBackend(["ok"])
    client = client_for(scripted, sampling=Sampling(temperature=0.3, top_p=0.8, max_tokens=20, repeat_penalty=1.2))
    client.post("/generate", json={"text": "hi"})
    decoding = scripted.decodings[-1]
    assert (decoding.temperature, decoding.top_p, decoding.max_tokens, decoding.repeat_penalty) == (0.3, 0.8, 20, 1.2)
    client.post("/generate", json={"text": "hi", "temperature": 1.1})
    assert scripted.decodings[-1].temperature == 1.1 and scripted.decodings[-1].top_p == 0.8


# --- keys, throttles, headers, metrics ------------------------------------------------------------

def test_key_file_gives_each_name_its_own_limit_conversations_and_replies(tmp_path):
    from server.keys import KeyRing

    (tmp_path / "keys").write_text("# who may talk to the twin\nalex  alex-key-123\nsam sam-key-4567\n\n")
    scripted = ScriptedBackend(["hi"])
    client = client_for(scripted, api_key=KeyRing.from_file(tmp_path / "keys"), rate_limit="3/min",
                        feedback_db=tmp_path / "f.sqlite")
    alex, sam = ({"Authorization": "Bearer alex-key-123"}, {"Authorization": "Bearer sam-key-4567"})
    rid = client.post("/generate", json={"text": "my secret", "conversation_id": "c"}, headers=alex).get_json()["id"]
    client.post("/generate", json={"text": "hey", "conversation_id": "c"}, headers=sam)
    assert "secret" not in json.dumps(scripted.calls[-1][0])  # sam's "c" is not alex's "c"
    assert client.post("/feedback", json={"id": rid, "rating": 1}, headers=sam).status_code == 404
    assert client.post("/feedback", json={"id": rid, "rating": 1}, headers=alex).status_code == 201
    assert client.post("/generate", json={"text": "x"}, headers=alex).status_code == 200
    assert client.post("/generate", json={"text": "x"}, headers=alex).status_code == 429  # alex's 3/min used
    assert client.post("/generate", json={"text": "x"}, headers=sam).status_code == 200


@pytest.mark.parametrize("content, fragment", [
    ("", "holds no keys"), ("alex\n", "NAME KEY"), ("alex short\n", "shorter"),
    ("alex key-1234567\nalex key-7654321\n", "twice"), ("a key-1234567\nb key-1234567\n", "same API key"),
])
def test_bad_key_files_are_refused(tmp_path, content, fragment):
    from core.errors import InputError
    from server.keys import KeyRing

    (tmp_path / "keys").write_text(content)
    with pytest.raises(InputError, match=fragment):
        KeyRing.from_file(tmp_path / "keys")


def test_wrong_keys_are_throttled_per_address():
    client = client_for(ScriptedBackend(["hi"]), api_key="right-key-1", rate_limit="off")
    guesser = {"REMOTE_ADDR": "10.9.9.9"}
    codes = [client.post("/generate", json={"text": "hi"}, headers={"Authorization": f"Bearer guess-{n}"},
                         environ_base=guesser).status_code for n in range(12)]
    assert codes == [401] * 10 + [429] * 2
    locked = client.post("/generate", json={"text": "hi"}, headers={"Authorization": "Bearer right-key-1"},
                         environ_base=guesser)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1  # even the right key waits
    other = client.post("/generate", json={"text": "hi"}, headers={"Authorization": "Bearer right-key-1"},
                        environ_base={"REMOTE_ADDR": "10.9.9.10"})
    assert other.status_code == 200


def test_every_response_refuses_framing():
    client = client_for(ScriptedBackend(["hi"]))
    for reply in (client.get("/health"), client.post("/generate", json={"text": "hi"}), client.get("/nope")):
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]


def test_metrics_in_prometheus_format_behind_the_key():
    from prometheus_client.parser import text_string_to_metric_families

    client = client_for(ScriptedBackend(["yeah | ok DONE"]), api_key="metric-key")
    key = {"Authorization": "Bearer metric-key"}
    assert client.get("/metrics").status_code == 401
    client.post("/generate", json={"text": "hi"}, headers=key)
    client.post("/generate", json={"text": "hi"}, headers={"Authorization": "Bearer wrong-key"})
    page = client.get("/metrics", headers=key)
    assert page.status_code == 200 and page.mimetype == "text/plain"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(page.get_data(as_text=True)) for s in family.samples}
    assert samples[("twin_http_requests_total", (("route", "/generate"), ("status", "200")))] == 1
    assert samples[("twin_http_requests_total", (("route", "/generate"), ("status", "401")))] == 1
    assert samples[("twin_tokens_total", (("kind", "completion"),))] == 1
    assert samples[("twin_replies_total", (("finish_reason", "stop"),))] == 1
    assert samples[("twin_queue_depth", ())] == 0
    assert samples[("twin_http_request_duration_seconds_count", (("route", "/generate"),))] == 2


def test_behind_the_tunnel_clients_are_told_apart_by_forwarded_address():
    """With --public every request comes from the local ngrok agent: one guesser must not lock out everyone."""
    client = client_for(ScriptedBackend(["hi"]), api_key="right-key-1", behind_proxy=True)
    agent = {"REMOTE_ADDR": "127.0.0.1"}
    for n in range(11):
        client.post("/generate", json={"text": "hi"}, headers={"Authorization": f"Bearer guess-{n}",
                                                               "X-Forwarded-For": "203.0.113.7"}, environ_base=agent)
    friend = client.post("/generate", json={"text": "hi"}, environ_base=agent,
                         headers={"Authorization": "Bearer right-key-1", "X-Forwarded-For": "198.51.100.2"})
    assert friend.status_code == 200
    guesser = client.post("/generate", json={"text": "hi"}, environ_base=agent,
                          headers={"Authorization": "Bearer right-key-1", "X-Forwarded-For": "203.0.113.7"})
    assert guesser.status_code == 429

"""The HTTP API over a real llama.cpp backend serving a tiny GGUF built in the test."""
import pytest

from dataprocess.template import DONE
from server.app import MAX_TOKENS_CAP, create_app
from server.backends import BackendError, LlamaCppBackend


@pytest.fixture(scope="module")
def backend(tiny_gguf):
    return LlamaCppBackend(tiny_gguf, threads=1, context=512)


class RecordingBackend:
    """Wraps the real backend to record the messages the app builds (and can force a reply)."""

    def __init__(self, real, reply=None):
        self.real, self.reply, self.calls = real, reply, []
        self.name = real.name

    def generate(self, messages, **kwargs):
        self.calls.append((messages, kwargs))
        result = self.real.generate(messages, **kwargs)
        if self.reply is not None:
            result.text = self.reply
        return result


def client_for(backend, **kwargs):
    return create_app(backend, persona="maya", **kwargs).test_client()


def test_generate_returns_response_and_messages(backend):
    reply = client_for(backend).post("/generate", json={"text": "hello, how are you?", "max_tokens": 8})
    assert reply.status_code == 200
    body = reply.get_json()
    assert set(body) == {"response", "messages"}
    assert isinstance(body["response"], str) and isinstance(body["messages"], list)
    assert DONE not in body["response"]


def test_done_is_stripped_and_pipes_split(backend):
    recording = RecordingBackend(backend, reply="yeah | bartaco? DONE and then junk")
    body = client_for(recording).post("/generate", json={"text": "Tacos?", "max_tokens": 4}).get_json()
    assert body == {"response": "yeah | bartaco?", "messages": ["yeah", "bartaco?"]}
    messages, kwargs = recording.calls[0]
    assert messages[0]["role"] == "system" and "maya" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "tacos?"}  # lowercased like the training data
    assert kwargs["max_tokens"] == 4


def test_history_is_passed_as_turns(backend):
    recording = RecordingBackend(backend)
    history = [{"role": "user", "content": "hey"}, {"role": "assistant", "content": "hiii"}]
    client_for(recording).post("/generate", json={"text": "tacos?", "history": history, "max_tokens": 2})
    roles = [m["role"] for m in recording.calls[0][0]]
    assert roles == ["system", "user", "assistant", "user"]


def test_generation_stops_on_done_in_real_backend(backend):
    # A stop string is honoured by llama.cpp: generation with DONE as stop never contains it.
    result = backend.generate([{"role": "user", "content": "hi"}], max_tokens=16, temperature=1.0)
    assert DONE not in result.text and result.finish_reason in ("stop", "length")


@pytest.mark.parametrize("kwargs, status, fragment", [
    ({"data": "not json", "content_type": "application/json"}, 400, "JSON object"),
    ({"json": ["a list"]}, 400, "JSON object"),
    ({"json": {}}, 400, "'text'"),
    ({"json": {"text": 5}}, 400, "'text'"),
    ({"json": {"text": "   "}}, 400, "'text'"),
    ({"json": {"text": "hi", "max_tokens": MAX_TOKENS_CAP + 1}}, 400, "max_tokens"),
    ({"json": {"text": "hi", "max_tokens": "5"}}, 400, "max_tokens"),
    ({"json": {"text": "hi", "temperature": 9}}, 400, "temperature"),
    ({"json": {"text": "hi", "history": [{"role": "bot", "content": "x"}]}}, 400, "history"),
    ({"json": {"text": "x" * 100_000}}, 413, ""),
])
def test_bad_requests_get_json_4xx(backend, kwargs, status, fragment):
    reply = client_for(backend).post("/generate", **kwargs)
    assert reply.status_code == status
    assert reply.is_json and fragment in reply.get_json()["error"]


def test_unknown_route_and_method_are_json(backend):
    client = client_for(backend)
    assert client.get("/nope").status_code == 404 and client.get("/nope").is_json
    assert client.get("/generate").status_code == 405 and client.get("/generate").is_json


def test_api_key_protects_everything_but_health(backend):
    client = client_for(backend, api_key="s3cret")
    assert client.get("/health").status_code == 200
    assert client.post("/generate", json={"text": "hi"}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/generate", json={"text": "hi"}, headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert client.post("/generate", json={"text": "hi", "max_tokens": 2}, headers=right).status_code == 200


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        LlamaCppBackend(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf")
    with pytest.raises(BackendError, match="cannot load"):
        LlamaCppBackend(junk)

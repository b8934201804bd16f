"""The OpenAI-compatible routes through the official `openai` client, against real waitress
servers on loopback: one serving the tiny GGUF, one a scripted reply with DONE split over tokens."""
import openai
import pytest

from server.app import create_app
from server.backends import LlamaCppBackend
from voice.llama import BatchedLlamaBackend
from helpers.server import ScriptedBackend, running

KEY = "test-key"


@pytest.fixture(scope="module", params=["one-at-a-time", "batched"])
def tiny_url(request, tiny_gguf):
    if request.param == "batched":
        backend = BatchedLlamaBackend(tiny_gguf, parallel=2, threads=1, context=512)
    else:
        backend = LlamaCppBackend(tiny_gguf, threads=1, context=512)
    app = create_app(backend, persona="maya", api_key=KEY)
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def scripted():
    backend = ScriptedBackend(["yeah", " |", " bar", "taco?", " DO", "NE", " and", " more"])
    app = create_app(backend, persona="maya", api_key=KEY, rate_limit="30/min")
    with running(app) as url:
        yield backend, url


def client(url, key=KEY):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)


def test_models_and_plain_completion_on_tiny_gguf(tiny_url):
    api = client(tiny_url)
    assert [m.id for m in api.models.list()] == ["twin-F16"]
    out = api.chat.completions.create(model="twin-F16", max_tokens=8, temperature=0.8,
                                      messages=[{"role": "user", "content": "hello, how are you?"}])
    assert out.object == "chat.completion" and out.choices[0].message.role == "assistant"
    assert isinstance(out.choices[0].message.content, str) and "DONE" not in out.choices[0].message.content
    assert out.choices[0].finish_reason in ("stop", "length") and 0 < out.usage.completion_tokens <= 8


def test_streaming_on_tiny_gguf(tiny_url):
    stream = client(tiny_url).chat.completions.create(
        model="twin", max_tokens=12, stream=True, messages=[{"role": "user", "content": "tacos tonight?"}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "DONE" not in text


def test_stream_never_shows_done_split_across_tokens(scripted):
    backend, url = scripted
    stream = client(url).chat.completions.create(
        model="twin", stream=True, messages=[{"role": "system", "content": "You are a helpful assistant."},
                                             {"role": "user", "content": "Tacos?"}])
    pieces = [c.choices[0].delta.content or "" for c in stream]
    assert "".join(pieces) == "yeah | bartaco?"
    assert not any(p.strip() in ("DO", "NE", "D", "and", "more") for p in pieces)
    # The twin's own system line replaces the client's; text lowercased like the training data.
    messages = backend.calls[-1][0]
    assert messages == [{"role": "system", "content": "you are maya. reply to texts the way maya does."},
                        {"role": "user", "content": "tacos?"}]


def test_plain_completion_history_and_max_tokens_cap(scripted):
    backend, url = scripted
    out = client(url).chat.completions.create(
        model="anything", max_tokens=100_000, messages=[{"role": "user", "content": "hey"},
                                                        {"role": "assistant", "content": "hiii"},
                                                        {"role": "user", "content": [{"type": "text", "text": "Tacos?"}]}])
    assert out.choices[0].message.content == "yeah | bartaco?" and out.choices[0].finish_reason == "stop"
    messages, kwargs = backend.calls[-1]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert kwargs["max_tokens"] == 256  # lowered to the server's cap


def test_client_errors_map_to_openai_exceptions(scripted):
    _, url = scripted
    with pytest.raises(openai.AuthenticationError):
        client(url, key="wrong").models.list()
    with pytest.raises(openai.BadRequestError) as caught:
        client(url).chat.completions.create(model="twin", messages=[{"role": "assistant", "content": "hi"}])
    assert "user message" in caught.value.response.json()["error"]  # {"error": "..."} like every route


def test_rate_limit_is_openai_rate_limit_error(tiny_gguf):
    app = create_app(ScriptedBackend(["hi"]), api_key=KEY, rate_limit="1/min")
    with running(app) as url:
        api = client(url)
        api.chat.completions.create(model="twin", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as caught:
            api.chat.completions.create(model="twin", messages=[{"role": "user", "content": "hi"}])
        assert int(caught.value.response.headers["retry-after"]) >= 1


def test_what_bots_send_tools_stop_seed_penalties_and_usage(scripted):
    backend, url = scripted
    api = client(url)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    out = api.chat.completions.create(
        model="twin", tools=tools, tool_choice="auto", stop=["taco"], seed=42, top_p=0.9,
        presence_penalty=0.3, frequency_penalty=0.2,
        messages=[{"role": "user", "content": "weather?"},
                  {"role": "assistant", "content": None,
                   "tool_calls": [{"id": "c1", "type": "function",
                                   "function": {"name": "get_weather", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                  {"role": "user", "content": "Tacos?"}])
    assert out.choices[0].message.content == "yeah | bar" and out.choices[0].message.tool_calls is None
    decoding = backend.decodings[-1]
    assert (decoding.stop, decoding.seed, decoding.top_p) == (("taco",), 42, 0.9)
    assert (decoding.presence_penalty, decoding.frequency_penalty) == (0.3, 0.2)
    assert [m["content"] for m in backend.calls[-1][0][1:]] == ["weather? | tacos?"]  # tool turns left out
    stream = api.chat.completions.create(model="twin", stream=True, stream_options={"include_usage": True},
                                         messages=[{"role": "user", "content": "Tacos?"}])
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "yeah | bartaco?"
    assert chunks[0].id.startswith("chatcmpl-") and len({c.id for c in chunks}) == 1


def test_seed_makes_sampling_repeatable_on_tiny_gguf(tiny_url):
    api = client(tiny_url)
    ask = lambda seed: api.chat.completions.create(  # noqa: E731
        model="twin", max_tokens=8, temperature=1.0, seed=seed,
        messages=[{"role": "user", "content": "hello, how are you?"}]).choices[0].message.content
    assert ask(11) == ask(11)

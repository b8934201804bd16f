"""Continuous batching (voice.llama) on the tiny GGUF: same greedy replies as the one-at-a-time
backend, many requests at once, cancellation, timeouts, a bounded queue."""
import threading

import pytest

from dataprocess.template import prompt_messages

from core.terminator import DONE
from server.backends import LlamaCppBackend, PromptTooLong, open_backend
from voice.llama import BatchedLlamaBackend
from voice.queueing import Gate, GenerationTimeout, Overloaded
from voice.replies import complete

PROMPTS = ["hello, how are you?", "want to get tacos tonight?", "what's your name?", "lol",
           "hello, how are you? | tacos?"]


@pytest.fixture(scope="module")
def batched(tiny_gguf):
    backend = BatchedLlamaBackend(tiny_gguf, parallel=4, threads=1, context=512,
                                  gate=Gate(max_waiting=32, wait_timeout=60))
    yield backend
    backend.close()


def test_greedy_replies_match_the_one_at_a_time_backend(batched, tiny_gguf):
    serial = LlamaCppBackend(tiny_gguf, threads=1, context=512)
    for text in PROMPTS:  # one after another: slots reuse the cached system-line prefix
        messages = prompt_messages("maya", text)
        want = serial.generate(messages, temperature=0, max_tokens=12)
        got = batched.generate(messages, temperature=0, max_tokens=12)
        assert got.text == want.text and got.completion_tokens <= 12
    serial.close()


def test_many_requests_at_once_all_complete(batched):
    results, errors = {}, []

    def ask(i):
        try:
            results[i] = complete(batched, prompt_messages("maya", PROMPTS[i % len(PROMPTS)]),
                                  temperature=0.8, max_tokens=10)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and len(results) == 12
    assert all(DONE not in r.text and r.completion_tokens <= 10 for r in results.values())


def test_closing_a_stream_frees_its_slot_and_timeouts_stop(tiny_gguf):
    backend = BatchedLlamaBackend(tiny_gguf, parallel=1, threads=1, context=512,
                                  gate=Gate(max_waiting=0, wait_timeout=5))
    try:
        stream = backend.stream(prompt_messages("maya", "hi"), temperature=1.0, max_tokens=200)
        next(stream)
        with pytest.raises(Overloaded, match="already queued"):  # the one slot is busy, no queue
            backend.stream(prompt_messages("maya", "hi"), max_tokens=4)
        stream.close()  # the client went away
        assert backend.generate(prompt_messages("maya", "hey"), max_tokens=4).completion_tokens <= 4
        backend.timeout = 0.000001
        with pytest.raises(GenerationTimeout):
            backend.generate(prompt_messages("maya", "hey"), max_tokens=50)
        with pytest.raises(PromptTooLong):
            backend.stream(prompt_messages("maya", "w " * 600), max_tokens=4)
    finally:
        backend.close()


def test_open_backend_picks_batching_by_parallel_or_workers(tiny_gguf):
    assert isinstance(open_backend("llama", model_path=tiny_gguf, threads=1, context=256), LlamaCppBackend)
    for parallel, workers in [(2, 1), (1, 2)]:
        backend = open_backend("llama", model_path=tiny_gguf, threads=1, context=256, parallel=parallel,
                               workers=workers)
        assert isinstance(backend, BatchedLlamaBackend) and len(backend.workers) == workers
        backend.close()


def test_two_workers_share_the_load(tiny_gguf):
    backend = BatchedLlamaBackend(tiny_gguf, parallel=2, workers=2, threads=1, context=512)
    try:
        sent = []
        for n, worker in enumerate(backend.workers):
            worker.submit = (lambda submit, n: lambda request: (sent.append(n), submit(request)))(worker.submit, n)
        streams = [backend.stream(prompt_messages("maya", "hi"), temperature=1.0, max_tokens=100) for _ in range(4)]
        assert sorted(sent) == [0, 0, 1, 1]  # spread over both, not queued on one
        for stream in streams:
            assert DONE not in "".join(stream)
        alone = backend.generate(prompt_messages("maya", PROMPTS[0]), temperature=0, max_tokens=12)
        serial = LlamaCppBackend(tiny_gguf, threads=1, context=512)
        assert alone.text == serial.generate(prompt_messages("maya", PROMPTS[0]), temperature=0, max_tokens=12).text
        serial.close()
    finally:
        backend.close()


def test_greedy_reply_matches_llama_cpp_python_called_directly(tiny_gguf):
    from voice.llama_runtime import open_llama

    backend = LlamaCppBackend(tiny_gguf, threads=1, context=512)
    direct = open_llama(tiny_gguf, n_ctx=512, n_threads=1, verbose=False)
    try:
        for text in PROMPTS[:3]:
            messages = prompt_messages("maya", text)
            tokens = backend.tokenize_prompt(messages)
            # the contract's first-token bans are logit biases of -inf on the first token only;
            # llama-cpp-python's own has no such thing, so the first token is the backend's
            first = backend.generate(messages, temperature=0, max_tokens=1).text
            want = first + direct.create_completion(tokens + direct.tokenize(first.encode(), add_bos=False, special=False),
                                                    max_tokens=11, temperature=0)["choices"][0]["text"]
            assert backend.generate(messages, temperature=0, max_tokens=12).text == want
    finally:
        backend.close()

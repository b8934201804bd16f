"""Every server backend applies the twin's fitted [sampling] biases (end_bias, separator_bias):
llama.cpp through its logit-bias sampler, transformers in its own sampling loop."""
import pytest

from core.terminator import MESSAGE_SEPARATOR, strip_terminator
from dataprocess.template import prompt_messages
from server.backends import LlamaCppBackend
from voice.hf import TransformersBackend

PROMPTS = ["hello, how are you?", "tacos tonight?", "what's your name?", "lol", "u up?", "see u at 7?"]


def _raw_replies(backend, **biases) -> list[str]:
    return [backend.generate(prompt_messages("maya", text), temperature=1.0, seed=n, max_tokens=12, **biases).text
            for n, text in enumerate(PROMPTS * 2)]


def _separators(texts):
    return sum(text.count(MESSAGE_SEPARATOR.rstrip()) for text in texts)  # " |"


def _length(texts):
    return sum(len(strip_terminator(text)) for text in texts)


@pytest.fixture(params=["llama", "transformers"])
def backend(request, tiny_gguf, tiny_llama):
    opened = (LlamaCppBackend(tiny_gguf, threads=1, context=512) if request.param == "llama"
              else TransformersBackend(tiny_llama, threads=1))
    yield opened
    opened.close()


def test_backends_apply_the_length_and_separator_biases(backend):
    plain = _raw_replies(backend)
    assert _raw_replies(backend) == plain   # seeded: the comparisons below are not luck of the draw
    assert _separators(_raw_replies(backend, separator_bias=5.0)) > _separators(plain) + 10
    assert _separators(_raw_replies(backend, separator_bias=-8.0)) == 0
    assert _length(_raw_replies(backend, end_bias=3.0)) < _length(plain) / 2

"""voice.exported and voice.modelfile: the twin's voice as a GGUF's own metadata and an Ollama
Modelfile, read by llama-cpp-python's high-level chat API as any front end reads them."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from core.settings import Sampling
from voice.exported import (read_sampling_keys, refresh_sampling, sampling_from_metadata, sampling_keys,
                            sampling_metadata, twin_chat_template)

SYSTEM = "you are maya. reply the way maya texts."
CHOSEN = Sampling(temperature=0.85, top_k=30, top_p=0.92, min_p=0.07, repeat_penalty=1.15, penalty_last_n=32,
                  presence_penalty=0.2, end_bias=-0.75, separator_bias=0.5)


@pytest.fixture(scope="module")
def twin_gguf(tiny_llama, tmp_path_factory):
    """The tiny model exported as a twin's GGUF: decoding keys and the twin's chat template."""
    from export.gguf_writer import write_gguf

    return write_gguf(tiny_llama, tmp_path_factory.mktemp("twin-gguf") / "twin-F16.gguf", "F16",
                      metadata=sampling_metadata(Sampling()), system=SYSTEM)


def _formatter(llm):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>",
                               bos_token="")


def test_the_template_has_the_twins_system_line_only_when_none_is_given(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    template = twin_chat_template(tokenizer.chat_template, SYSTEM)
    user = [{"role": "user", "content": "hey"}]
    own = [{"role": "system", "content": "something else"}, *user]
    render = lambda messages, t: tokenizer.apply_chat_template(messages, chat_template=t, tokenize=False,  # noqa: E731
                                                               add_generation_prompt=True)
    assert render(user, template).startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>")
    assert SYSTEM not in render(user, tokenizer.chat_template)
    assert render(own, template) == render(own, tokenizer.chat_template)  # twin's prompts are unchanged
    named = twin_chat_template([{"name": "default", "template": "A"}, {"name": "tool_use", "template": "B"}], SYSTEM)
    assert named[0]["template"].endswith("A") and SYSTEM in named[0]["template"] and named[1]["template"] == "B"
    assert twin_chat_template(None, SYSTEM) is None


def test_a_third_party_chat_client_renders_the_twins_system_line(twin_gguf):
    from voice.llama_runtime import open_llama

    llm = open_llama(twin_gguf, n_ctx=256, n_threads=1)
    try:
        prompt = _formatter(llm)(messages=[{"role": "user", "content": "hey"}]).prompt
        assert prompt.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nhey<|im_end|>")
        # the high-level chat API on the GGUF alone (no system message): it answers and ends at
        # the end of turn, which never shows
        reply = llm.create_chat_completion(messages=[{"role": "user", "content": "hey"}], max_tokens=8, seed=1)
        text = reply["choices"][0]["message"]["content"]
        assert "<|im_end|>" not in text and "<|im_start|>" not in text
        assert read_sampling_keys(llm.metadata) == sampling_keys(Sampling())
        assert sampling_from_metadata(llm.metadata) == Sampling()
    finally:
        llm.close()


def test_refresh_rewrites_the_decoding_keys_and_keeps_the_model(twin_gguf, tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "twin-F16.gguf"
    path.write_bytes(twin_gguf.read_bytes())
    os.utime(path, (1_700_000_000, 1_700_000_000))
    before = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(path)).tensors}

    assert refresh_sampling(path, CHOSEN) is True
    reader = gguf.GGUFReader(str(path))
    fields = {key: reader.get_field(key).contents() for key in sampling_metadata(CHOSEN)}
    assert fields["general.sampling.temp"] == pytest.approx(0.85)
    assert fields["general.sampling.top_k"] == 30 and fields["general.sampling.penalty_last_n"] == 32
    assert fields["general.sampling.min_p"] == pytest.approx(0.07)
    assert json.loads(fields["twin.sampling"]) == dataclasses.asdict(CHOSEN)  # biases and all
    assert reader.get_field("tokenizer.chat_template").contents() == \
        gguf.GGUFReader(str(twin_gguf)).get_field("tokenizer.chat_template").contents()
    for tensor in reader.tensors:
        assert np.array_equal(np.array(tensor.data), before[tensor.name]), tensor.name
    assert path.stat().st_mtime == 1_700_000_000  # still the same export: `twin serve -w` picks by age
    del reader
    assert refresh_sampling(path, CHOSEN) is False  # already so: untouched
    assert not list(tmp_path.glob("*.tmp"))


def test_the_modelfile_says_what_the_gguf_says(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    from voice.modelfile import bias_note, parameters, refresh_parameters, write_modelfile

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    path = write_modelfile(tmp_path / "Modelfile", "twin-F16.gguf", tokenizer, "DONE", system=SYSTEM,
                           parameters=parameters(Sampling()), notes=bias_note(Sampling(), {}))
    keys = sampling_keys(CHOSEN)
    assert refresh_parameters(path, CHOSEN) is True
    lines = path.read_text().splitlines()
    values = {line.split()[1]: line.split()[2] for line in lines if line.startswith("PARAMETER ")
              and line.split()[1] != "stop"}
    assert float(values["temperature"]) == pytest.approx(keys["general.sampling.temp"])
    assert int(values["top_k"]) == keys["general.sampling.top_k"]
    assert float(values["top_p"]) == pytest.approx(keys["general.sampling.top_p"])
    assert float(values["min_p"]) == pytest.approx(keys["general.sampling.min_p"])
    assert float(values["repeat_penalty"]) == pytest.approx(keys["general.sampling.penalty_repeat"])
    assert int(values["repeat_last_n"]) == keys["general.sampling.penalty_last_n"]
    assert float(values["presence_penalty"]) == 0.2 and int(values["num_predict"]) == CHOSEN.max_tokens
    assert 'PARAMETER stop "<|im_end|>"' in lines and 'PARAMETER stop "DONE"' in lines
    assert f'SYSTEM """{SYSTEM}"""' in lines
    assert len([line for line in lines if line.startswith("PARAMETER temperature")]) == 1
    assert refresh_parameters(tmp_path / "none", CHOSEN) is False

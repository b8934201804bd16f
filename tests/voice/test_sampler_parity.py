"""The decoding contract, runtime by runtime: the same logits through transformers' processors
(voice.hf) and through llama.cpp's sampler chain (voice.llama) give the same distribution to draw
from, for several settings (biases and penalties among them); both runtimes of one model ban the
same first tokens and bias the same tokens."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from core.settings import Sampling
from core.terminator import StyleTokens
from voice.decoding import Decoding
from voice.hf import TokenizerVoice, logits_processors
from voice.llama import ban_first_tokens, sampler_chain

N_VOCAB = 512
PROMPT = [1, 17, 42, 99, 7]
STYLE = StyleTokens(end=(3,), separator=(11,))

SETTINGS = {
    "defaults": Sampling(),
    "plain softmax": Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0),
    "hot, narrow top-p": Sampling(temperature=1.4, top_k=0, top_p=0.5, min_p=0.0),
    "top-k only": Sampling(temperature=0.8, top_k=12, top_p=1.0, min_p=0.0),
    "min-p only": Sampling(temperature=0.6, top_k=0, top_p=1.0, min_p=0.2),
    "biases": Sampling(temperature=0.9, end_bias=2.5, separator_bias=-1.75),
    "penalties": Sampling(temperature=1.0, repeat_penalty=1.3, presence_penalty=0.6, frequency_penalty=0.4,
                          penalty_last_n=6),
    "everything": Sampling(temperature=1.1, top_k=30, top_p=0.8, min_p=0.03, repeat_penalty=1.2,
                           presence_penalty=0.3, frequency_penalty=0.2, end_bias=-1.0, separator_bias=1.0),
}


def _logits(seed: int) -> np.ndarray:
    # a peaked, language-model-like row: a few likely tokens, a long tail (and tokens 3 and 11,
    # the style tokens, among the likely ones so their biases matter)
    rng = np.random.default_rng(seed)
    row = rng.normal(0.0, 2.0, N_VOCAB).astype(np.float32)
    row[[3, 11, 20, 21]] += 6.0
    return row


def _hf(decoding: Decoding, row: np.ndarray, generated: list[int], bans: frozenset[int]) -> np.ndarray:
    import torch

    voice = TokenizerVoice(stops=(2,), first_banned=bans, style_tokens=STYLE)
    ids = torch.tensor([PROMPT + generated])
    scores = logits_processors(decoding, voice, len(PROMPT))(ids, torch.tensor(row)[None, :].clone())
    return torch.softmax(scores[0].double(), dim=-1).numpy()


def _llama(decoding: Decoding, row: np.ndarray, generated: list[int], bans: frozenset[int]) -> np.ndarray:
    import llama_cpp as L

    chain = sampler_chain(L, N_VOCAB, decoding, decoding.biases(STYLE), seed=0, draw=False)
    try:
        for token in generated:  # what the backend's llama_sampler_sample accepts, token by token
            L.llama_sampler_accept(chain, token)
        logits = row.copy()
        if not generated:
            ban_first_tokens(logits, bans)
        data = (L.llama_token_data * N_VOCAB)(*[L.llama_token_data(i, float(v), 0.0) for i, v in enumerate(logits)])
        array = L.llama_token_data_array(data, N_VOCAB, -1, False)
        L.llama_sampler_apply(chain, ctypes.byref(array))
        kept = {data[i].id: data[i].logit for i in range(array.size)}
    finally:
        L.llama_sampler_free(chain)
    values = np.array(list(kept.values()), dtype=np.float64)
    probs = np.exp(values - values[np.isfinite(values)].max())
    out = np.zeros(N_VOCAB)
    out[list(kept)] = probs / probs.sum()
    return out


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("generated", [[], [20, 21, 20, 3]], ids=["first token", "later token"])
def test_both_runtimes_sample_from_the_same_distribution(name, generated):
    decoding = Decoding.from_sampling(SETTINGS[name])
    bans = frozenset({2, 20})
    for seed in range(3):
        row = _logits(seed)
        hf, llama = _hf(decoding, row, generated, bans), _llama(decoding, row, generated, bans)
        assert np.count_nonzero(hf) == np.count_nonzero(llama)  # the same tokens survive the filters
        np.testing.assert_allclose(hf, llama, atol=2e-6)
        if not generated:
            assert hf[20] == llama[20] == 0.0  # banned as a first token: never drawn


def test_the_order_matters_so_the_check_can_fail():
    """Temperature before top-p (transformers' own generate order) is another distribution: the
    comparison above would see it."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    decoding = Decoding.from_sampling(SETTINGS["hot, narrow top-p"])
    row = _logits(0)
    scores = TopPLogitsWarper(decoding.top_p)(None, TemperatureLogitsWarper(decoding.temperature)(
        None, torch.tensor(row)[None, :].clone()))
    swapped = torch.softmax(scores[0].double(), dim=-1).numpy()
    assert np.abs(swapped - _llama(decoding, row, [], frozenset())).max() > 1e-3


def test_greedy_picks_the_same_token(tiny_llama):
    decoding = Decoding.from_sampling(Sampling(temperature=0.0, repeat_penalty=1.5, end_bias=3.0))
    for seed in range(3):
        row = _logits(seed)
        assert _hf(decoding, row, [3, 20], frozenset()).argmax() == _llama(decoding, row, [3, 20], frozenset()).argmax()


def test_both_runtimes_of_one_model_ban_and_bias_the_same_tokens(tiny_llama, tiny_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from voice.llama import LlamaCppBackend

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    hf = TokenizerVoice.of(tokenizer, AutoModelForCausalLM.from_pretrained(tiny_llama))
    backend = LlamaCppBackend(tiny_gguf, threads=1, context=256)
    try:
        assert backend.first_banned == hf.first_banned
        assert backend.style_tokens == hf.style_tokens
        assert hf.style_tokens.end == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
        # every piece of DONE that is one token, and whitespace, may not begin a reply
        for text in ("D", " D", " DONE", " ", "\n"):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                assert ids[0] in hf.first_banned, text
    finally:
        backend.close()

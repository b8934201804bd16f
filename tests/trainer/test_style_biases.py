"""The [sampling] length and separator biases: the tokens they find, their effect on generated
replies (transformers, as twin eval generates), and the fitting that twin eval runs."""
import pytest

from core.settings import Sampling
from core.terminator import DONE, MESSAGE_SEPARATOR, StyleTokens, strip_terminator
from trainer import decoding_choice
from trainer.generation import Decoding

PROMPTS = [[{"role": "user", "content": text}] for text in
           ("hello, how are you?", "tacos tonight?", "what's your name?", "lol", "u up?", "see u at 7?")]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)


def _tokenize(tokenizer):
    return lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]


def test_style_tokens_are_the_ones_written_after_a_word(tiny):
    _, tokenizer = tiny
    found = StyleTokens.find(_tokenize(tokenizer))
    assert len(found.end) == 1 and len(found.separator) == 1
    after_word = tokenizer.decode(list(found.end))
    assert after_word.strip() and DONE.startswith(after_word.strip())   # the first piece of " DONE"
    assert tokenizer.decode(list(found.separator)).strip() == MESSAGE_SEPARATOR.strip()
    assert found.biases(0, 0) == {}
    assert found.biases(1.5, -2.0) == {found.end[0]: 1.5, found.separator[0]: -2.0}


def test_style_tokens_of_a_word_level_tokenizer():
    vocab = {"ok": 1, " DONE": 2, " |": 3, " D": 4}

    def tokenize(text):  # greedy longest match over a toy vocabulary
        ids, at = [], 0
        while at < len(text):
            piece = max((p for p in vocab if text.startswith(p, at)), key=len)
            ids.append(vocab[piece])
            at += len(piece)
        return ids

    assert StyleTokens.find(tokenize) == StyleTokens(end=(2,), separator=(3,))


def _raw(tiny, **biases) -> list[str]:
    """Raw generations (before cleaning: a random model that loops on `` |`` would collapse to
    nothing once empty messages are dropped), sampled at temperature 1."""
    import torch

    from trainer import generation

    model, tokenizer = tiny
    torch.manual_seed(0)
    decoding = Decoding.from_sampling(Sampling(temperature=1.0, **biases), 12)
    return [text for text, _ in generation._generate_batch(
        model, tokenizer, PROMPTS * 2, decoding, generation.stop_token_ids(tokenizer, model),
        generation.first_token_bans(tokenizer, model))]


def test_biases_change_length_and_separators(tiny):
    def separators(texts):
        return sum(text.count(MESSAGE_SEPARATOR.rstrip()) for text in texts)  # " |"

    def length(texts):
        return sum(len(strip_terminator(text)) for text in texts)

    plain = _raw(tiny)
    assert separators(_raw(tiny, separator_bias=3.0)) > separators(plain) + 10
    assert separators(_raw(tiny, separator_bias=-8.0)) == 0
    assert length(_raw(tiny, end_bias=3.0)) < length(plain) / 2   # the terminator comes much sooner
    assert length(_raw(tiny, end_bias=-8.0)) >= length(plain)


def test_fitting_moves_the_biases_towards_the_person(tiny, monkeypatch):
    model, tokenizer = tiny
    monkeypatch.setattr(decoding_choice, "FIT_REPLIES", 12)
    person = {"mean_chars": 4.0, "separator_rate": 0.0}  # short replies, never split
    start = Sampling(temperature=0.7)
    fitted, rounds = decoding_choice.fit_style_biases(model, tokenizer, PROMPTS, person, start, 12,
                                                      log=lambda *_: None)
    assert 2 <= len(rounds) <= decoding_choice.FIT_ROUNDS
    assert rounds[0]["end_bias"] == 0.0 and rounds[0]["length_ratio"] > 1.5  # a random model rambles
    assert rounds[1]["end_bias"] > 0          # too long: the terminator made likelier
    kept = next(r for r in rounds if (r["end_bias"], r["separator_bias"]) == (fitted.end_bias, fitted.separator_bias))
    assert kept["length_ratio"] < rounds[0]["length_ratio"]
    assert abs(fitted.end_bias) <= decoding_choice.MAX_BIAS and abs(fitted.separator_bias) <= decoding_choice.MAX_BIAS
    assert fitted.temperature == start.temperature   # only the biases are fitted


def test_next_bias_steps_by_the_measured_slope():
    rounds = [{"end_bias": 0.0, "length_drift": 0.4, "separator_bias": 0.0, "separator_drift": -0.3}]
    # first round: FIRST_GAIN x the drift, the right way for each bias (too long: end likelier;
    # too few splits: separator likelier)
    assert decoding_choice._next_bias(rounds, "end_bias", "length_drift") == 0.8
    assert decoding_choice._next_bias(rounds, "separator_bias", "separator_drift") == 0.6
    # then a secant: 0.8 of end bias took the drift from 0.4 to 0.2, so 0.8 more closes it
    rounds.append({"end_bias": 0.8, "length_drift": 0.2, "separator_bias": 0.6, "separator_drift": -0.1})
    assert decoding_choice._next_bias(rounds, "end_bias", "length_drift") == 1.6
    assert decoding_choice._next_bias(rounds, "separator_bias", "separator_drift") == 0.9
    # a slope the wrong way (noise) falls back to the plain step; steps and biases are bounded
    rounds.append({"end_bias": 1.6, "length_drift": 0.5, "separator_bias": 3.9, "separator_drift": -3.0})
    assert decoding_choice._next_bias(rounds, "end_bias", "length_drift") == 1.6 + 1.0
    assert decoding_choice._next_bias(rounds, "separator_bias", "separator_drift") == decoding_choice.MAX_BIAS


def test_candidates_answer_each_valid_prompt_until_there_are_enough_replies():
    assert decoding_choice.choice_rounds(60) == 2
    assert decoding_choice.choice_rounds(11) == 4      # at most 4 replies per prompt
    assert decoding_choice.choice_rounds(500) == 1


def test_the_choice_averages_the_classifier_over_rounds():
    from trainer import fidelity
    from trainer.generation import Generated

    real = [f"ok see u at {n}" for n in range(12)]
    like = list(real)   # the same texts: nothing to tell them apart by
    unlike = ["WHAT IS THIS?!" for _ in range(12)]
    figures = decoding_choice.measure([Generated(t, True) for t in like + unlike], real)
    expected = (fidelity.classifier_accuracy(real, like)["accuracy"]
                + fidelity.classifier_accuracy(real, unlike)["accuracy"]) / 2
    assert figures["classifier_accuracy"] == pytest.approx(expected, abs=1e-4)
    assert fidelity.classifier_accuracy(real, unlike)["accuracy"] > figures["classifier_accuracy"]


def test_a_candidate_that_loops_is_not_chosen_while_another_keeps_to_the_limits():
    table = [{"penalty": 0.3, "termination_rate": 1.0, "loop_rate": 0.07, "empty_rate": 0.0},
             {"penalty": 0.5, "termination_rate": 0.97, "loop_rate": 0.0, "empty_rate": 0.0},
             {"penalty": 0.6, "termination_rate": 1.0, "loop_rate": 0.0, "empty_rate": 0.0},
             {"penalty": 0.2, "termination_rate": 1.0, "loop_rate": 0.0, "empty_rate": 0.01}]
    assert decoding_choice.pick(table) == 2
    assert decoding_choice.pick(table[:2]) == 0   # none keeps to them: the lowest penalty

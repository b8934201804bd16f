"""The [sampling] length and separator biases: the tokens they find, their effect on generated
replies (the transformers runtime), the fitting that twin eval runs and its shrink."""
import pytest

from core.settings import Sampling
from core.terminator import MESSAGE_SEPARATOR, StyleTokens
from trainer import decoding_choice
from trainer.eval_runtime import TransformersRuntime
from voice.decoding import Decoding
from voice.hf import TokenizerVoice, generate_replies
from voice.replies import Reply

PROMPTS = [[{"role": "user", "content": text}] for text in
           ("hello, how are you?", "tacos tonight?", "what's your name?", "lol", "u up?", "see u at 7?")]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)


def test_style_tokens_are_the_end_of_turn_and_the_separator_after_a_word(tiny):
    _, tokenizer = tiny
    found = TokenizerVoice.of(tokenizer).style_tokens
    # the trained twin ends a reply with the template's end-of-turn token, not DONE
    assert found.end == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    assert len(found.separator) == 1
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

    assert StyleTokens.find(tokenize, 9) == StyleTokens(end=(9,), separator=(3,))
    assert StyleTokens.find(tokenize, None) == StyleTokens(end=(), separator=(3,))


def _replies(tiny, **biases) -> list[Reply]:
    """Replies sampled at temperature 1, the same draws for every setting."""
    model, tokenizer = tiny
    decoding = Decoding.from_sampling(Sampling(temperature=1.0, **biases), max_tokens=12)
    return generate_replies(model, tokenizer, PROMPTS * 2, decoding, tries=1, seed=0)


def test_biases_change_length_and_separators(tiny):
    def separators(replies):
        return sum(r.text.count(MESSAGE_SEPARATOR.rstrip()) for r in replies)  # " |"

    def length(replies):
        return sum(r.completion_tokens for r in replies)

    plain = _replies(tiny)
    assert separators(_replies(tiny, separator_bias=3.0)) > separators(plain) + 10
    assert separators(_replies(tiny, separator_bias=-8.0)) == 0
    assert length(_replies(tiny, end_bias=3.0)) < length(plain) / 2   # the end of turn comes much sooner
    assert length(_replies(tiny, end_bias=-8.0)) >= length(plain)


def test_fitting_moves_the_biases_towards_the_person(tiny, monkeypatch):
    model, tokenizer = tiny
    monkeypatch.setattr(decoding_choice, "FIT_REPLIES", 12)
    person = {"mean_chars": 4.0, "separator_rate": 0.0}  # short replies, never split
    start = Sampling(temperature=0.7)
    fitted, rounds = decoding_choice.fit_style_biases(TransformersRuntime(model, tokenizer), PROMPTS, person,
                                                      start, log=lambda *_: None)
    *rounds, shrink = rounds
    assert 2 <= len(rounds) <= decoding_choice.FIT_ROUNDS
    assert rounds[0]["end_bias"] == 0.0 and rounds[0]["length_ratio"] > 1.5  # a random model rambles
    assert rounds[1]["end_bias"] > 0          # too long: the terminator made likelier
    # the bias kept is the best round's, shrunk by how sure the first round's drift is
    kept = shrink["shrink"]
    assert 0 < kept["end_bias_kept"] <= 1 and fitted.end_bias == shrink["end_bias"] > 0
    best = next(r for r in rounds if r["end_bias"] and
                round(r["end_bias"] * kept["end_bias_kept"], 3) == fitted.end_bias)
    assert best["length_ratio"] < rounds[0]["length_ratio"]
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

    real = [f"ok see u at {n}" for n in range(12)]
    like = list(real)   # the same texts: nothing to tell them apart by
    unlike = ["WHAT IS THIS?!" for _ in range(12)]
    figures = decoding_choice.measure([Reply(t, "stop") for t in like + unlike], real)
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


def test_the_shrink_keeps_a_drift_in_proportion_to_the_evidence():
    assert decoding_choice.shrinkage(0.0, 0.1) == 0.0
    assert decoding_choice.shrinkage(0.3, float("inf")) == 0.0
    assert decoding_choice.shrinkage(0.3, 0.0) == 1.0               # no noise: the whole fitted bias
    assert decoding_choice.shrinkage(0.3, 0.3) == pytest.approx(0.5)
    # the same drift measured on fewer prompts (a larger error) keeps less of its bias
    assert decoding_choice.shrinkage(0.3, 0.2) > decoding_choice.shrinkage(0.3, 0.4)


def test_drift_errors_come_from_the_spread_between_prompts():
    from trainer import fidelity

    same = ["ok cool"] * 12                     # every prompt answered alike: no doubt left
    assert decoding_choice.drift_errors(same, 4, fidelity.style(same))[0] == 0.0
    mixed = ["ok", "ok", "a much longer reply here", "a much longer reply here"] * 3
    error_4 = decoding_choice.drift_errors(mixed, 4, fidelity.style(mixed))[0]   # prompts 0,1 short, 2,3 long
    assert error_4 > 0
    assert decoding_choice.drift_errors(["one"], 1, fidelity.style(["one"])) == (float("inf"), float("inf"))


def test_the_biases_are_fitted_on_enough_prompts_topped_up_from_training():
    from dataprocess.splits import Example

    def rows(split, n, source="chat"):
        return [Example(({"role": "user", "content": f"{split} {i}"},), "ok DONE", source=source) for i in range(n)]

    valid, train = rows("valid", 16), rows("train", 80) + rows("facts", 10, source="facts")
    fit = decoding_choice.fit_rows(valid, train)
    assert len(fit) == decoding_choice.MIN_FIT_PROMPTS and fit[:16] == valid   # every valid prompt first
    extra = [r.incoming for r in fit[16:]]
    assert len(set(extra)) == len(extra) and all(t.startswith("train ") for t in extra)   # no fact drills
    # spread over the whole training split, not only its start
    numbers = [int(t.split()[1]) for t in extra]
    assert numbers[0] == 0 and numbers[-1] >= 70
    # a valid split large enough is used as it is; a tiny history gives what it has
    assert decoding_choice.fit_rows(rows("valid", 60), train) == rows("valid", 60)
    assert len(decoding_choice.fit_rows(rows("valid", 3), rows("train", 5))) == 8

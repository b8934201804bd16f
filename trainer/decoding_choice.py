"""Choosing the twin's decoding defaults (``twin.toml`` [sampling]) from measured figures.

A few candidate settings (temperature, top-p, repetition and presence penalties) each generate
replies to the valid split's prompts (each prompt up to 4 times, for 120 replies: the classifier
is averaged over those rounds); among those whose replies end on their own (98%), loop in at
most 2% and are never empty, the one whose replies are hardest to tell from the
person's, end on their own, do not loop and keep the person's length, `` | `` and lowercase
habits (``trainer.fidelity.fidelity_penalty``, lowest wins) becomes the workspace's default,
which the server, ``twin chat`` and the exported Modelfile/GGUF then use. The test split is left
for the report, so the figures ``twin eval`` prints are not the ones the choice was made on.

Then the two logit biases of [sampling] are fitted (:func:`fit_style_biases`): ``end_bias`` on the
token that begins the terminator sets how soon replies end, ``separator_bias`` on `` |`` how
often a reply is several messages. Temperature and penalties move length and separators only
as a side effect; the biases aim at them directly. A few rounds generate replies to the valid
prompts (each prompt several times: a mean over a dozen replies is too noisy to steer by; the same
random draws every round, so that two rounds differ by what the biases did, not by luck) and
move each bias by the log of the ratio still to close, towards the person's own mean length and
`` | `` rate over all their replies. The round closest to the person is kept.
"""
from __future__ import annotations

import dataclasses
import math

from core.settings import Sampling

from . import fidelity
from .generation import Decoding, generate_replies

# (temperature, top_p, repeat_penalty, presence_penalty): from plain sampling to a firmly
# penalised one; the workspace's current setting is always tried as well. Temperature 1 samples
# the words as often as the twin learnt them (the server's min-p and top-k still cut the unlikely
# tail); lower ones favour its most likely replies, which a classifier learns to spot (the
# sample's demo twin: told from the person 61% of the time at 0.8, 56% at 1.0; BENCHMARKS.md).
CANDIDATES = (
    (0.7, 1.0, 1.0, 0.0),
    (0.7, 0.9, 1.1, 0.0),
    (0.5, 0.9, 1.15, 0.0),
    (0.8, 0.95, 1.1, 0.3),
    (1.0, 0.95, 1.1, 0.3),
)


def candidates(current: Sampling) -> list[Sampling]:
    found = [current]
    for temperature, top_p, repeat, presence in CANDIDATES:
        option = dataclasses.replace(current, temperature=temperature, top_p=top_p, repeat_penalty=repeat,
                                     presence_penalty=presence, frequency_penalty=0.0)
        if option not in found:
            found.append(option)
    return found


def measure(replies, real: list[str], person: dict | None = None) -> dict:
    """The figures one candidate is judged on (replies: ``trainer.generation.Generated``, one or
    more rounds of replies to the prompts of ``real``, round after round): the classifier against
    ``real`` (the replies to the same prompts), averaged over the rounds; the style ratios
    against ``person`` (the style of all the person's replies; ``real``'s when not given)."""
    texts = [r.text for r in replies]
    twin_style, real_style = fidelity.style(texts), person or fidelity.style(real)
    return {
        "termination_rate": round(sum(r.terminated for r in replies) / max(len(replies), 1), 4),
        "loop_rate": fidelity.loop_rate(texts),
        "empty_rate": fidelity.empty_rate(texts),
        "ratios": fidelity.style_ratios(twin_style, real_style),
        "classifier_accuracy": fidelity.classifier_over_rounds(real, texts)["accuracy"],
    }


MIN_CHOICE_REPLIES = 120  # replies each candidate gives (each valid prompt up to 4 times): the
                          # classifier on one round of 60 pairs still varied by +-0.05 between draws


def choice_rounds(prompts: int) -> int:
    return max(1, min(4, math.ceil(MIN_CHOICE_REPLIES / max(prompts, 1))))


def choose_sampling(model, tokenizer, rows: list[dict], real: list[str], current: Sampling,
                    max_new_tokens: int, person: dict | None = None, fit_biases: bool = True,
                    log=print) -> tuple[Sampling, list[dict], list[dict]]:
    """The best candidate on ``rows`` (prompt/completion records), with its biases fitted to
    ``person`` (the style of all the person's replies, ``real``'s when not given); every
    candidate's figures; the bias-fitting rounds."""
    import torch

    person = person or fidelity.style(real)

    prompts = [r["prompt"] for r in rows]
    repeated = prompts * choice_rounds(len(prompts))
    table = []
    for option in candidates(current):
        torch.manual_seed(0)  # every candidate meets the same random draws
        replies = generate_replies(model, tokenizer, repeated, Decoding.from_sampling(option, max_new_tokens))
        figures = measure(replies, real, person)
        figures["penalty"] = fidelity.fidelity_penalty(figures)
        table.append({"sampling": dataclasses.asdict(option), **figures})
        log(f"  temperature {option.temperature}, top-p {option.top_p}, repeat penalty {option.repeat_penalty}, "
            f"presence {option.presence_penalty}: penalty {figures['penalty']:.3f} "
            f"(ends {figures['termination_rate']:.0%}, loops {figures['loop_rate']:.0%}, "
            f"classifier {_pct(figures['classifier_accuracy'])})")
    best = candidates(current)[pick(table)]
    if not fit_biases:
        return best, table, []
    log("fitting the length and separator biases to your replies...")
    fitted, rounds = fit_style_biases(model, tokenizer, prompts, person, best, max_new_tokens, log=log)
    return fitted, table, rounds


def pick(table: list[dict]) -> int:
    """The row of ``table`` (each candidate's figures) with the lowest penalty, among those whose
    replies end on their own, do not loop and are never empty (all rows if none is)."""
    usable = [i for i, row in enumerate(table) if fidelity.within_limits(row)] or list(range(len(table)))
    return min(usable, key=lambda i: table[i]["penalty"])


FIT_ROUNDS = 4          # generation rounds at most (the first measures the chosen candidate as it is)
FIT_REPLIES = 64        # replies per round: the valid prompts, repeated
MAX_BIAS = 4.0          # |bias| in logits; beyond it the model's own preference is overruled
STEP_LIMIT = 1.5        # the most one round may move a bias
FIRST_GAIN = 2.0        # first step: this many logits per unit of log ratio (a model sure of where
                        # a reply ends moves less than one logit per unit; measured on the sample)
CLOSE_ENOUGH = 0.04     # |log ratio| under which a figure counts as matched


def _drift(twin: dict, person: dict) -> tuple[float, float]:
    """log(twin/person) of the mean length and of the `` | `` rate (0 = the person's)."""
    length = math.log(max(twin["mean_chars"], 1.0) / max(person["mean_chars"], 1.0))
    if person["separator_rate"] <= 0:
        separator = math.log(1 + 10 * twin["separator_rate"])  # the person never splits: any split is off
    else:
        floor = 0.5 / FIT_REPLIES  # a twin with no split at all still gets a finite ratio
        separator = math.log(max(twin["separator_rate"], floor) / person["separator_rate"])
    return length, separator


def fit_style_biases(model, tokenizer, prompts: list[list[dict]], person: dict, sampling: Sampling,
                     max_new_tokens: int, log=print) -> tuple[Sampling, list[dict]]:
    """``sampling`` with ``end_bias`` and ``separator_bias`` fitted so that replies to ``prompts``
    have the mean length and `` | `` rate of ``person`` (:func:`trainer.fidelity.style` of the
    person's replies); returns it and each round's figures."""
    import torch

    if not prompts:
        return sampling, []
    repeated = [prompts[i % len(prompts)] for i in range(max(FIT_REPLIES, len(prompts)))]
    rounds, best = [], None
    current = sampling
    for _ in range(FIT_ROUNDS):
        torch.manual_seed(0)  # the same draws every round: what changes is the biases' doing, not luck
        replies = generate_replies(model, tokenizer, repeated, Decoding.from_sampling(current, max_new_tokens))
        twin = fidelity.style([r.text for r in replies])
        length, separator = _drift(twin, person)
        row = {"end_bias": current.end_bias, "separator_bias": current.separator_bias,
               "mean_chars": twin["mean_chars"], "separator_rate": twin["separator_rate"],
               "length_ratio": round(math.exp(length), 4), "length_drift": round(length, 4),
               "separator_drift": round(separator, 4),
               "termination_rate": round(sum(r.terminated for r in replies) / len(replies), 4)}
        rounds.append(row)
        log(f"  end bias {current.end_bias:+.2f}, separator bias {current.separator_bias:+.2f}: "
            f"length {row['length_ratio']:.2f}x the person's, | in {twin['separator_rate']:.0%} of replies "
            f"(person {person['separator_rate']:.0%})")
        score = abs(length) + abs(separator) + (1 - row["termination_rate"])
        if best is None or score < best[0]:
            best = (score, current)
        if abs(length) < CLOSE_ENOUGH and abs(separator) < CLOSE_ENOUGH:
            break

        current = dataclasses.replace(
            current, end_bias=_next_bias(rounds, "end_bias", "length_drift"),
            separator_bias=_next_bias(rounds, "separator_bias", "separator_drift"))
    return best[1], rounds


def _next_bias(rounds: list[dict], bias_key: str, drift_key: str) -> float:
    """The next value of one bias: a secant step through the last two rounds (how much the drift
    really moved per unit of bias), or FIRST_GAIN x the drift before there are two rounds or
    when the slope comes out the wrong way; at most STEP_LIMIT, within +-MAX_BIAS.

    A drift > 0 (too long, too many splits) wants a larger end bias and a smaller separator
    bias: ``sign`` below. How far the drift moves per unit of bias depends on how sure the
    model is where replies end, so it is measured rather than assumed."""
    sign = 1.0 if bias_key == "end_bias" else -1.0
    last = rounds[-1]
    step = sign * FIRST_GAIN * last[drift_key]
    if len(rounds) >= 2:
        before = rounds[-2]
        moved = last[bias_key] - before[bias_key]
        change = last[drift_key] - before[drift_key]
        if abs(moved) > 1e-6 and sign * change / moved < -0.05:  # drift falls as the bias rises (end)
            step = -last[drift_key] * moved / change
    step = max(-STEP_LIMIT, min(STEP_LIMIT, step))
    return round(max(-MAX_BIAS, min(MAX_BIAS, last[bias_key] + step)), 3)


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.0%}"

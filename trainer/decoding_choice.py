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
prompts, topped up to 60 with training prompts when the valid split is smaller (:func:`fit_rows`
says why that is fair), 128 replies a round (a mean over fewer is too noisy to steer by; the same
random draws every round, so that two rounds differ by what the biases did, not by luck) and
move each bias by the log of the ratio still to close, towards the person's own mean length and
`` | `` rate over all their replies. The round closest to the person is kept, and then each
bias is shrunk towards 0 in proportion to the evidence it was fitted on (:func:`shrinkage`).

Why shrink, and why that is fair: a bias corrects the twin's drift from the person as measured
on the valid prompts. That measure has two parts, the twin's real habit and the chance of which
prompts the valid split happens to hold (ten prompts that draw short replies make any twin look
short). The second part shows in the spread of the twin's reply lengths from prompt to prompt:
the drift's standard error is that spread over the square root of the number of prompts. A
normal prior on the true drift centred on 0 (the trained twin's own habit, learnt from every one
of the person's replies) whose variance is estimated by the measured drift itself gives the
posterior mean ``drift * drift^2 / (drift^2 + se^2)``: with sixty prompts and a clear drift the
bias stays almost whole; with ten prompts and a drift no larger than its noise it mostly goes.
The persona's own figures (all their replies, hundreds) are not shrunk: they are the target.
Choosing and fitting both run on the runtime ``twin eval`` measures with (trainer.eval_runtime):
the served GGUF where there is one.
"""
from __future__ import annotations

import dataclasses
import math

from core.settings import Sampling
from core.terminator import MESSAGE_SEPARATOR
from voice.decoding import Decoding

from . import fidelity

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
    """The settings tried: the current one and :data:`CANDIDATES`, all without biases (they are
    fitted afresh for the one chosen)."""
    current = dataclasses.replace(current, end_bias=0.0, separator_bias=0.0)
    found = [current]
    for temperature, top_p, repeat, presence in CANDIDATES:
        option = dataclasses.replace(current, temperature=temperature, top_p=top_p, repeat_penalty=repeat,
                                     presence_penalty=presence, frequency_penalty=0.0)
        if option not in found:
            found.append(option)
    return found


def measure(replies, real: list[str], person: dict | None = None) -> dict:
    """The figures one candidate is judged on (replies: ``voice.replies.Reply``, one or
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


def choose_sampling(runtime, rows: list, real: list[str], current: Sampling, person: dict | None = None,
                    fit_biases: bool = True, fit_rows: list | None = None,
                    log=print) -> tuple[Sampling, list[dict], list[dict]]:
    """The best candidate on ``rows`` (``dataprocess.splits.Example``), with its biases fitted to
    ``person`` (the style of all the person's replies, ``real``'s when not given) on the prompts
    of ``fit_rows`` (``rows`` when not given; see :func:`fit_rows`); every candidate's figures;
    the bias-fitting rounds. ``runtime``: trainer.eval_runtime's."""
    person = person or fidelity.style(real)

    prompts = [r.messages() for r in rows]
    repeated = prompts * choice_rounds(len(prompts))
    table = []
    for option in candidates(current):
        # every candidate meets the same random draws (the same seeds)
        replies = runtime.replies(repeated, Decoding.from_sampling(option), seed=0)
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
    fit_prompts = [r.messages() for r in fit_rows] if fit_rows else prompts
    fitted, rounds = fit_style_biases(runtime, fit_prompts, person, best, log=log)
    return fitted, table, rounds


def pick(table: list[dict]) -> int:
    """The row of ``table`` (each candidate's figures) with the lowest penalty, among those whose
    replies end on their own, do not loop and are never empty (all rows if none is)."""
    usable = [i for i, row in enumerate(table) if fidelity.within_limits(row)] or list(range(len(table)))
    return min(usable, key=lambda i: table[i]["penalty"])


FIT_ROUNDS = 4          # generation rounds at most (the first measures the chosen candidate as it is)
FIT_REPLIES = 128       # replies per round, the fit prompts repeated: reply lengths vary by ~54% (the
                        # small persona's), so a mean over 64 has a ~7% standard error, most of the
                        # 10% aimed at; over 128, ~5%
MIN_FIT_PROMPTS = 60    # prompts the biases are fitted on at least (:func:`fit_rows`)


def fit_rows(valid: list, train: list) -> list:
    """The examples whose prompts the biases are fitted on: the valid ones, topped up to
    MIN_FIT_PROMPTS with chat examples of the training split spread evenly over it when the valid
    split is smaller (a small history: ~16 valid prompts).

    Why training prompts are fair here: a bias corrects a habit of the decoder (replies that end
    too soon), not what the twin knows, and that habit shows on prompts it was trained on as on
    new ones. Measured on the small persona's twin (BENCHMARKS.md, bench/bench_small_heldout.py):
    with no bias, 0.74x the person's length on its 87 training prompts and 0.82x on 406 prompts of
    conversations it never saw. Its 16 valid prompts alone said 0.79x +- 0.08. The classifier
    and the candidates stay on the valid split only."""
    rows = list(valid)
    pool = [r for r in train if r.source == "chat"]
    need = min(MIN_FIT_PROMPTS - len(rows), len(pool))
    if need > 0:
        rows += [pool[i * len(pool) // need] for i in range(need)]
    return rows
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


def per_prompt(texts: list[str], n_prompts: int) -> list[list[str]]:
    """Replies grouped by prompt: rounds of replies to ``n_prompts`` prompts, round after round."""
    groups: list[list[str]] = [[] for _ in range(n_prompts)]
    for i, text in enumerate(texts):
        groups[i % n_prompts].append(text)
    return groups


def drift_errors(texts: list[str], n_prompts: int, twin: dict) -> tuple[float, float]:
    """Standard errors of the two drifts of :func:`_drift` that come from which prompts were
    asked: the spread of the per-prompt mean length (and `` | `` rate) over the square root of
    the number of prompts, relative to the overall figure (the delta method on the log)."""
    groups = [g for g in per_prompt(texts, n_prompts) if g]
    if len(groups) < 2:
        return math.inf, math.inf

    def relative_error(values: list[float], overall: float) -> float:
        if overall <= 0:
            return math.inf
        mean = sum(values) / len(values)
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        return spread / math.sqrt(len(values)) / overall

    lengths = [sum(len(t) for t in g) / len(g) for g in groups]
    rates = [sum(MESSAGE_SEPARATOR.strip() in t for t in g) / len(g) for g in groups]
    # the same floors as _drift's: a twin that never splits still has a finite relative error
    return (relative_error(lengths, max(twin["mean_chars"], 1.0)),
            relative_error(rates, max(twin["separator_rate"], 0.5 / FIT_REPLIES)))


def shrinkage(drift: float, error: float) -> float:
    """The share of a measured drift taken as real (see the module docstring): drift^2 /
    (drift^2 + error^2); 0 when there is no drift or no way to tell it from noise."""
    if not math.isfinite(error) or drift == 0:
        return 0.0
    return drift * drift / (drift * drift + error * error)


def fit_style_biases(runtime, prompts: list[list[dict]], person: dict, sampling: Sampling,
                     log=print) -> tuple[Sampling, list[dict]]:
    """``sampling`` with ``end_bias`` and ``separator_bias`` fitted so that replies to ``prompts``
    have the mean length and `` | `` rate of ``person`` (:func:`trainer.fidelity.style` of the
    person's replies), each shrunk by the evidence (:func:`shrinkage`); returns it and each
    round's figures (the last row: the shrink)."""
    if not prompts:
        return sampling, []
    repeated = [prompts[i % len(prompts)] for i in range(max(FIT_REPLIES, len(prompts)))]
    rounds, best = [], None
    current = dataclasses.replace(sampling, end_bias=0.0, separator_bias=0.0)
    first_drift = first_error = None
    for _ in range(FIT_ROUNDS):
        # the same draws (seeds) every round: what changes is the biases' doing, not luck
        replies = runtime.replies(repeated, Decoding.from_sampling(current), seed=0)
        texts = [r.text for r in replies]
        twin = fidelity.style(texts)
        length, separator = _drift(twin, person)
        if first_drift is None:  # at no bias: the drift the biases correct, and its noise
            first_drift, first_error = (length, separator), drift_errors(texts, len(prompts), twin)
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
    fitted = best[1]
    keep_end, keep_separator = shrinkage(first_drift[0], first_error[0]), shrinkage(first_drift[1], first_error[1])
    chosen = dataclasses.replace(fitted, end_bias=round(fitted.end_bias * keep_end, 3),
                                 separator_bias=round(fitted.separator_bias * keep_separator, 3))
    rounds.append({"shrink": {"prompts": len(prompts), "length_drift": round(first_drift[0], 4),
                              "length_error": round(first_error[0], 4), "end_bias_kept": round(keep_end, 4),
                              "separator_drift": round(first_drift[1], 4),
                              "separator_error": round(first_error[1], 4),
                              "separator_bias_kept": round(keep_separator, 4)},
                   "end_bias": chosen.end_bias, "separator_bias": chosen.separator_bias})
    log(f"  kept {keep_end:.0%} of the end bias and {keep_separator:.0%} of the separator bias "
        f"({len(prompts)} prompts: drifts {first_drift[0]:+.2f} +- {first_error[0]:.2f}, "
        f"{first_drift[1]:+.2f} +- {first_error[1]:.2f})")
    return chosen, rounds


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

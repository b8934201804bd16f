"""The fidelity figures without a model: style rates, loops, the real-vs-twin classifier, the
headline score, the confidence interval, the "best adapter" rule, the schedule, the judgement
store and the seeded small persona."""
import random
import subprocess
import sys

import pytest

from trainer import fidelity
from trainer.best_adapter import better
from trainer.judgements import JudgementStore, RoundError, summary
from trainer.schedule import MAX_EPOCHS, plan

from helpers.paths import ROOT

REAL_POOL = ["omg hiii | im good just got back from climbing | u?", "bet | see u at 7", "lowkey tired ngl",
             "pickle says hi", "ya fr lmaooo", "bartaco?", "ugh ya | same fr", "love that", "ik | shes perfect",
             "glad ur good!!", "omg | where is that", "ok wait | ya im down", "lol no", "sooo pretty",
             "cant tonight | tmrw?", "omw", "haha ya", "ngl that sounds fun", "im at the studio | call u after"]


def test_style_figures_and_ratios():
    figures = fidelity.style(["yeah | bartaco?", "Sure.", "lol 😂"])
    assert figures["lowercase_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert figures["separator_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert figures["emoji_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert figures["punctuation_rate"] == pytest.approx(2 / 3, abs=1e-3)  # "?" and "."
    assert figures["vocabulary_richness"] == 1.0
    assert fidelity.style(["a a a b"])["vocabulary_richness"] == 0.5
    ratios = fidelity.style_ratios({**figures, "emoji_rate": 0.5}, {**figures, "emoji_rate": 0.0})
    assert ratios["lowercase_rate"] == 1.0 and ratios["emoji_rate"] is None
    assert fidelity.vocabulary_overlap(["omg tacos", "hello"], ["omg", "tacos tonight"]) == pytest.approx(2 / 3, abs=1e-3)


@pytest.mark.parametrize("text", [
    "i'm coming | i'm coming | i'm coming",
    "i'm free on saturday | i'm free on saturday | i'm",
    "ya so i was thinking ya so i was thinking we could",
    "hahahehehahahehehahahehe",
])
def test_loops_are_found(text):
    assert fidelity.loops(text)


@pytest.mark.parametrize("text", REAL_POOL + ["hahahaha", "no no no", "ok | sure | ok cool"])
def test_ordinary_replies_do_not_loop(text):
    assert not fidelity.loops(text)


def test_loop_and_empty_rates():
    assert fidelity.loop_rate(["bet | bet", "bet"]) == 0.5
    assert fidelity.empty_rate(["", " | ", "ok"]) == pytest.approx(2 / 3, abs=1e-3)
    assert fidelity.loop_rate([]) == 0.0


def test_classifier_separates_different_styles_and_not_the_same_one():
    rng = random.Random(1)
    real = [rng.choice(REAL_POOL) for _ in range(60)]
    same = [rng.choice(REAL_POOL) for _ in range(60)]
    other = [f"Hello! I am doing well, thank you for asking. Number {i}." for i in range(60)]
    told = fidelity.classifier_accuracy(real, other)
    assert told["accuracy"] >= 0.95 and told["pairs"] == 60 and len(told["folds"]) == 5
    untold = fidelity.classifier_accuracy(real, same)
    assert untold["accuracy"] <= 0.7  # the same distribution: about chance
    assert fidelity.classifier_accuracy(real[:3], same[:3])["accuracy"] is None  # too few to cross-validate


def test_headline_score_and_interval():
    assert fidelity.sounds_like_you(0.5) == 100 and fidelity.sounds_like_you(0.3) == 100
    assert fidelity.sounds_like_you(1.0) == 0 and fidelity.sounds_like_you(0.75) == 50
    assert fidelity.sounds_like_you(None) is None
    low, high = fidelity.wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    assert fidelity.wilson_interval(0, 0) is None
    assert fidelity.wilson_interval(0, 20)[0] == 0.0


def test_fidelity_penalty():
    perfect = {"classifier_accuracy": 0.5, "termination_rate": 1.0, "loop_rate": 0.0, "empty_rate": 0.0,
               "ratios": {"mean_chars": 1.0, "separator_rate": 1.0, "lowercase_rate": 1.0, "emoji_rate": 3.0}}
    assert fidelity.fidelity_penalty(perfect) == 0.0  # emoji is not a goal rate
    worse = {**perfect, "termination_rate": 0.7, "classifier_accuracy": 0.75}
    assert fidelity.fidelity_penalty(worse) == pytest.approx(0.3 + 0.5)


def test_best_adapter_rule():
    assert better(2.0, None, 2.5, None)                  # loss only: lower wins
    assert not better(2.6, None, 2.5, None)
    assert better(2.6, 0.1, 2.5, 0.6)                    # ends/loops much better, loss within 10%
    assert not better(3.0, 0.1, 2.5, 0.6)                # ... but not at any loss
    assert better(2.4, 0.62, 2.5, 0.6)                   # about the same penalty: lower loss wins
    assert not better(2.0, 0.9, 2.5, 0.6)                # clearly worse replies never win
    assert better(9.0, 0.5, float("inf"), None)          # the first evaluation is the best so far


def test_schedule_fits_the_dataset():
    small = plan(96, 8)
    assert small.steps_per_epoch == 12 and small.epochs == 19 and small.patience == 3
    sample = plan(600, 8)
    assert sample.epochs == 3 and sample.patience == 1      # the sample keeps its 3 epochs
    assert plan(5, 8).epochs == MAX_EPOCHS
    assert plan(96, 4, grad_accum=2, processes=2).steps_per_epoch == 6


def test_judgement_store_rounds_and_summary(tmp_path):
    db = tmp_path / "j.sqlite"
    assert summary(db) is None
    store = JudgementStore(db)
    shown = [store.open_round(i, "hey how are you?", "omg hiii | u?", f"twin reply {i}") for i in range(4)]
    assert all(sorted(s["replies"]) == sorted(["omg hiii | u?", f"twin reply {i}"]) for i, s in enumerate(shown))
    results = []
    for s in shown[:3]:
        twin_slot = s["replies"].index(next(r for r in s["replies"] if r.startswith("twin")))
        results.append(store.answer(s["id"], twin_slot))  # the friend is fooled each time
    assert not any(r["correct"] for r in results)
    with pytest.raises(RoundError, match="already"):
        store.answer(shown[0]["id"], 0)
    with pytest.raises(RoundError, match="no such round"):
        store.answer("nope", 0)
    with pytest.raises(RoundError):
        store.answer(shown[3]["id"], 2)
    real_slot = shown[3]["replies"].index("omg hiii | u?")
    assert store.answer(shown[3]["id"], real_slot) == {"correct": True, "real": real_slot}
    totals = summary(db)
    assert totals["answered"] == 4 and totals["fooled"] == 3 and totals["share_fooled"] == 0.75
    assert totals["ci95"][0] < 0.75 < totals["ci95"][1]


def test_small_persona_is_seeded_and_about_120_pairs(tmp_path):
    from core.workspace import Workspace
    from dataprocess.pipeline import run_process

    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):   # run as its README line says: a script, not an import
        subprocess.run([sys.executable, str(ROOT / "samples" / "make_small_persona.py"), str(out)],
                       check=True, capture_output=True)
    csv = first / "messages.csv"
    assert csv.read_bytes() == (second / "messages.csv").read_bytes()
    run_process([csv], Workspace(tmp_path / "ws"))
    pairs = sum(len((tmp_path / "ws" / "data" / f"{s}.jsonl").read_text().splitlines())
                for s in ("train", "valid", "test"))
    assert 105 <= pairs <= 135


def test_vocabulary_richness_is_compared_at_one_size():
    from trainer.fidelity import style

    ten = [f"word{i} and more{i}" for i in range(10)]
    many = ten * 20                                # the same replies, 200 of them
    assert style(many)["vocabulary_richness"] < 0.1  # counted over all: it falls with the size
    assert style(many, richness_size=10)["vocabulary_richness"] == style(ten)["vocabulary_richness"]
    assert style(ten, richness_size=50) == style(ten)  # a size above the list's is the whole list

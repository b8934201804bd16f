"""Training's side of fidelity on a tiny model: the schedule fitted to the dataset's size, the
valid replies' termination / loop / empty rates at each validation, and the best adapter chosen
on them as well as on the loss."""
import json
import shutil

import pytest

from core.workspace import Workspace
from trainer.schedule import plan
from trainer.train import TrainOptions, run_training


@pytest.fixture
def small_workspace(sample_workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace, root)
    for split, keep in (("train", 16), ("valid", 4), ("test", 4)):
        path = root / "data" / f"{split}.jsonl"
        path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:keep]), encoding="utf-8")
    return root


def test_default_schedule_and_valid_reply_tracking(small_workspace, tiny_llama):
    said = []
    summary = run_training(Workspace(small_workspace), TrainOptions(base=str(tiny_llama), learning_rate=5e-3,
                                                                    save_steps=1000, tensorboard=False),
                           log=said.append)
    expected = plan(16, 8)
    assert any(line.startswith(f"schedule: 16 training examples, {expected.epochs} epochs") for line in said)
    assert summary["steps"] <= expected.steps
    if not summary["stopped_early"]:
        assert summary["steps"] == expected.steps
    records = [json.loads(line) for line in open(small_workspace / "adapter" / "train_log.jsonl")]
    tracked = [r for r in records if "eval_termination_rate" in r]
    evaluations = [r for r in records if "eval_loss" in r]
    assert tracked and len(tracked) == len(evaluations)  # at every validation
    for r in tracked:
        assert all(0 <= r[k] <= 1 for k in ("eval_termination_rate", "eval_loop_rate", "eval_empty_rate"))
    assert any("valid replies end by themselves" in line for line in said)
    best = json.loads((small_workspace / "adapter" / "checkpoints" / "best" / "best.json").read_text())
    assert best["step"] == summary["adapter_step"] and best["fidelity_penalty"] is not None
    kept = next(r for r in tracked if r["step"] == best["step"])
    assert best["fidelity_penalty"] == pytest.approx((1 - kept["eval_termination_rate"]) + kept["eval_loop_rate"]
                                                     + kept["eval_empty_rate"], abs=1e-3)


def test_given_epochs_are_kept_and_tracking_can_be_off(small_workspace, tiny_llama):
    said = []
    summary = run_training(Workspace(small_workspace), TrainOptions(base=str(tiny_llama), epochs=1, save_steps=1000,
                                                                    tensorboard=False, track_replies=False),
                           log=said.append)
    assert summary["steps"] == 2 and not any(line.startswith("schedule:") for line in said)
    records = [json.loads(line) for line in open(small_workspace / "adapter" / "train_log.jsonl")]
    assert not any("eval_termination_rate" in r for r in records)

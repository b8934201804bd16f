"""trainer.progress: the progress bar, train_log.jsonl and TensorBoard while a run goes."""
import json

import pytest

from core.workspace import Workspace
from trainer.train import TrainOptions, run_training

pytestmark = pytest.mark.usefixtures("own_twin_cache")


def test_progress_bar_shows_loss_tokens_per_second_and_eta(train_workspace, tiny_llama, capfd):
    run_training(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=6, save_steps=100,
                                                          tensorboard=False), log=print)
    err = capfd.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()
    bar = next(line for line in reversed(final) if line.startswith("training"))
    assert "6/6" in bar and "loss=" in bar and "tok/s=" in bar and "<" in bar  # elapsed<remaining
    assert "{'loss'" not in err  # no raw metric dicts
    steps = [json.loads(line) for line in open(train_workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps[-1]["tokens"] > steps[0]["tokens"] > 0  # tokens seen are counted


def test_tensorboard_logs_when_installed(train_workspace, tiny_llama):
    # tensorboard is a test dependency (pyproject's test extra): a missing one fails, never skips
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_training(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=10, save_steps=100),
                 log=lambda *_: None)
    runs = train_workspace / "adapter" / "runs"
    assert list(runs.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(runs))
    events.Reload()
    assert "train/loss" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("train/loss")] == [5, 10]

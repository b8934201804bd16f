"""trainer.train: masking, adapter output, the twin.toml record, resume, padding-free batches, early stopping."""
import json
import shutil
from pathlib import Path

import pytest

from core.base_ref import fingerprint
from core.terminator import DONE
from core.workspace import Workspace
from trainer.base_model import locate_base
from trainer.train import TrainOptions, build_trainer, run_training

pytestmark = pytest.mark.usefixtures("own_twin_cache")


def test_loss_is_masked_on_the_prompt_only(train_workspace, tiny_llama):
    trainer, _, _ = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=1))
    tokenizer = trainer.processing_class
    row = json.loads((train_workspace / "data" / "train.jsonl").read_text().splitlines()[0])
    prompt_text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert ids[:len(prompt_ids)] == list(prompt_ids)
    assert all(label == -100 for label in labels[:len(prompt_ids)])
    learned = [t for t, label in zip(ids, labels) if label != -100]
    assert learned == ids[len(prompt_ids):]
    text = tokenizer.decode(learned)
    reply = row["completion"][0]["content"]
    assert reply.endswith(" " + DONE)  # the data file keeps its terminator ...
    # ... the model learns the reply alone, ended by the template's end-of-turn token (which every
    # llama.cpp front end stops at and hides), so no front end ever shows DONE
    assert text.startswith(reply[:-len(" " + DONE)] + tokenizer.eos_token) and DONE not in text


def test_train_saves_adapter_tokenizer_and_settings(train_workspace, tiny_llama):
    summary = run_training(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=3, save_steps=2),
                           log=lambda *_: None)
    adapter = train_workspace / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert (adapter / "tokenizer.json").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_llama)
    assert summary["steps"] == 3 and summary["quant"] == "none"
    assert not [p.name for p in adapter.iterdir() if p.name.startswith(".")]  # no staging left behind
    settings = Workspace(train_workspace).settings()
    assert settings.persona.name == "maya"  # what `twin process` wrote is kept
    record = settings.train
    assert (record.steps, record.quant, record.adapter_step) == (3, "none", 3)
    # the base by name and content, never by a path of this machine
    assert record.base == tiny_llama.name and record.base_fingerprint == fingerprint(tiny_llama)
    assert str(tiny_llama.parent) not in (train_workspace / "twin.toml").read_text()
    assert locate_base(record) and fingerprint(locate_base(record)) == record.base_fingerprint


class _InterruptAfterSave:
    """A trainer callback that acts like Ctrl-C right after the checkpoint at ``step``."""

    def __init__(self, step):
        self.step = step

    def __getattr__(self, name):  # every other callback event: do nothing
        return lambda *args, **kwargs: None

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def _adapter_weights(root):
    from safetensors.torch import load_file

    return load_file(str(root / "adapter" / "adapter_model.safetensors"))


def test_interrupted_run_resumes_to_the_same_adapter(train_workspace, tiny_llama, tmp_path):
    import torch

    straight = tmp_path / "straight"
    shutil.copytree(train_workspace, straight)
    options = TrainOptions(base=str(tiny_llama), max_steps=4, save_steps=2)
    run_training(Workspace(straight), options, log=lambda *_: None)

    trainer, _, _ = build_trainer(Workspace(train_workspace), options, log=lambda *_: None)
    trainer.add_callback(_InterruptAfterSave(2))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert (train_workspace / "adapter" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (train_workspace / "adapter" / "adapter_model.safetensors").exists()
    said = []
    summary = run_training(Workspace(train_workspace), TrainOptions(**{**options.__dict__, "resume": True}), log=said.append)
    assert summary["steps"] == 4 and not any("from the beginning" in line for line in said)
    steps = [json.loads(line)["step"] for line in open(train_workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps == [1, 2, 3, 4]  # steps 1-2 before the interruption, only 3-4 after it
    resumed, reference = _adapter_weights(train_workspace), _adapter_weights(straight)
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(resumed[name], reference[name], atol=1e-6), name


def test_padding_free_batches_give_the_padded_loss(train_workspace, tiny_llama):
    """A padding-free batch (examples end to end, positions restarting per example) must give
    the same loss as the padded batch: attention stays within each example."""
    import torch

    losses = {}
    for padding_free in (True, False):
        trainer, _, _ = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=1,
                                                                         padding_free=padding_free),
                                      log=lambda *_: None)
        examples = [trainer.train_dataset[i] for i in range(6)]
        batch = trainer._prepare_inputs(trainer.data_collator(examples))
        assert ("attention_mask" in batch) is not padding_free
        if padding_free:  # one row, no padding: exactly the examples' tokens
            assert batch["input_ids"].shape[0] == 1
            assert batch["input_ids"].shape[1] == sum(len(e["input_ids"]) for e in examples)
        trainer.model.eval()
        with torch.no_grad():
            losses[padding_free] = trainer.compute_loss(trainer.model, batch).item()
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


def test_padding_free_would_notice_attention_across_examples(train_workspace, tiny_llama):
    """The check above can fail: the same row with positions that do not restart (one long
    sequence, so each example attends to the ones before it) gives another loss."""
    import torch

    trainer, _, _ = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=1),
                                  log=lambda *_: None)
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(6)]))
    trainer.model.eval()
    with torch.no_grad():
        packed = trainer.compute_loss(trainer.model, dict(batch)).item()
        flat = {"input_ids": batch["input_ids"], "labels": batch["labels"],
                "position_ids": torch.arange(batch["input_ids"].shape[1])[None]}
        leaking = trainer.compute_loss(trainer.model, flat).item()
    assert abs(packed - leaking) > 1e-3


def test_worse_validation_stops_early_and_keeps_the_best_adapter(train_workspace, tiny_llama):
    """A learning rate far too high makes the validation loss climb after the first evaluation:
    training stops after `patience` worse evaluations and the saved adapter is the best one."""
    from safetensors.torch import load_file

    options = TrainOptions(base=str(tiny_llama), max_steps=20, eval_steps=2, patience=1, learning_rate=3.0,
                           save_steps=100)
    said = []
    summary = run_training(Workspace(train_workspace), options, log=said.append)
    evals = [json.loads(line) for line in open(train_workspace / "adapter" / "train_log.jsonl")
             if "eval_loss" in json.loads(line)]
    losses = {e["step"]: e["eval_loss"] for e in evals}
    # the step trainer.best_adapter judged best (its rule: the lowest loss, weighed with the valid replies)
    best_step = json.loads((train_workspace / "adapter" / "checkpoints" / "best" / "best.json").read_text())["step"]
    assert best_step in losses
    assert summary["stopped_early"] and summary["steps"] < 20
    assert summary["adapter_step"] == best_step < summary["steps"]
    assert summary["eval_loss"] == pytest.approx(losses[best_step])
    assert sum(1 for step in losses if step > best_step) == 1  # exactly `patience` worse evaluations
    assert any("stopped early" in line for line in said) and any("keeping the adapter from step" in line
                                                                   for line in said)
    saved = load_file(str(train_workspace / "adapter" / "adapter_model.safetensors"))
    best = load_file(str(train_workspace / "adapter" / "checkpoints" / "best" / "adapter_model.safetensors"))
    assert saved.keys() == best.keys() and all((saved[k] == best[k]).all() for k in saved)


def test_patience_zero_never_stops_early(train_workspace, tiny_llama):
    options = TrainOptions(base=str(tiny_llama), max_steps=20, eval_steps=2, patience=0, learning_rate=3.0,
                           save_steps=100)
    summary = run_training(Workspace(train_workspace), options, log=lambda *_: None)
    assert summary["steps"] == 20 and not summary["stopped_early"]


def test_killed_run_resumes_from_its_last_complete_checkpoint(train_workspace, tiny_llama):
    """`twin train` killed with SIGKILL (no chance to clean up) mid-run, then `--resume`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from trainer.train import _last_checkpoint

    twin = [sys.executable, "-m", "twin_cli", "train", "-w", str(train_workspace), "--base", str(tiny_llama),
            "--save-steps", "3", "--no-tensorboard"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    checkpoints = train_workspace / "adapter" / "checkpoints"
    proc = subprocess.Popen([*twin, "--max-steps", "100000"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (checkpoints / "checkpoint-6" / "trainer_state.json").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "training did not reach step 6"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (train_workspace / "adapter" / "adapter_model.safetensors").exists()
    resumed_from = int(Path(_last_checkpoint(checkpoints)).name.split("-")[1])
    assert resumed_from >= 6

    target = resumed_from + 3
    done = subprocess.run([*twin, "--resume", "--max-steps", str(target)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "from the beginning" not in done.stdout
    assert f"trained {target} steps" in done.stdout
    steps = [json.loads(line)["step"] for line in open(train_workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps[:resumed_from] == list(range(1, resumed_from + 1))  # the killed run's steps (and maybe more)
    assert steps[-3:] == [resumed_from + 1, resumed_from + 2, target]  # the resumed run went on from there
    assert (train_workspace / "adapter" / "adapter_model.safetensors").is_file()


def test_incomplete_checkpoint_is_not_resumed_from(tmp_path):
    from trainer.train import _last_checkpoint

    for step, state in ((2, "{}"), (4, "{}"), (6, None), (8, '{"global_st')):  # 6 and 8: killed while saving
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert _last_checkpoint(tmp_path / "missing") is None


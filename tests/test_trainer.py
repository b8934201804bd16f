"""The training stage on tiny random models: masking, padding token, adapter output, resume, errors."""
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.terminator import DONE
from core.workspace import Workspace
from trainer.base_model import BaseModelError, resolve_base
from trainer.quant import choose_quant
from trainer.tokens import prepare_tokenizer
from trainer.train import TrainOptions, build_trainer, run_training
from twin_cli import main


@pytest.fixture
def workspace(sample_workspace, tmp_path):
    """A private copy of the processed sample workspace, trimmed so tiny runs stay quick."""
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace, root)
    for split, keep in (("train", 64), ("valid", 8), ("test", 8)):
        path = root / "data" / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:keep]
        path.write_text("".join(lines), encoding="utf-8")
    return root


def test_loss_is_masked_on_the_prompt_only(workspace, tiny_llama):
    trainer, _, _ = build_trainer(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=1))
    tokenizer = trainer.processing_class
    row = json.loads((workspace / "data" / "train.jsonl").read_text().splitlines()[0])
    prompt_text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert ids[:len(prompt_ids)] == list(prompt_ids)
    assert all(label == -100 for label in labels[:len(prompt_ids)])
    learned = [t for t, label in zip(ids, labels) if label != -100]
    assert learned == ids[len(prompt_ids):]
    text = tokenizer.decode(learned)
    assert text.startswith(row["completion"][0]["content"])  # the reply, ending in DONE ...
    assert DONE in text and tokenizer.eos_token in text          # ... then the end-of-turn token


def test_padding_token_is_not_eos(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = tokenizer.eos_token
    assert prepare_tokenizer(tokenizer) is False
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_tokenizer_without_chat_template_gets_the_fallback(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = None
    prepare_tokenizer(tokenizer)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in rendered


def test_train_saves_adapter_tokenizer_and_settings(workspace, tiny_llama):
    summary = run_training(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=3, save_steps=2),
                           log=lambda *_: None)
    adapter = workspace / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert (adapter / "tokenizer.json").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_llama)
    assert summary["steps"] == 3 and summary["quant"] == "none"
    assert not list(adapter.glob(".saving-*"))
    settings = Workspace(workspace).load_settings()
    assert settings["train"]["base_path"] == str(tiny_llama) and settings["persona"]["name"] == "maya"


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


def test_interrupted_run_resumes_to_the_same_adapter(workspace, tiny_llama, tmp_path):
    import torch

    straight = tmp_path / "straight"
    shutil.copytree(workspace, straight)
    options = TrainOptions(base=str(tiny_llama), max_steps=4, save_steps=2)
    run_training(Workspace(straight), options, log=lambda *_: None)

    trainer, _, _ = build_trainer(Workspace(workspace), options, log=lambda *_: None)
    trainer.add_callback(_InterruptAfterSave(2))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert (workspace / "adapter" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (workspace / "adapter" / "adapter_model.safetensors").exists()
    said = []
    summary = run_training(Workspace(workspace), TrainOptions(**{**options.__dict__, "resume": True}), log=said.append)
    assert summary["steps"] == 4 and not any("from the beginning" in line for line in said)
    steps = [json.loads(line)["step"] for line in open(workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps == [1, 2, 3, 4]  # steps 1-2 before the interruption, only 3-4 after it
    resumed, reference = _adapter_weights(workspace), _adapter_weights(straight)
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(resumed[name], reference[name], atol=1e-6), name


def test_auto_quant_choice():
    assert choose_quant("auto", cuda=False, n_params=3_000_000_000) == "none"
    assert choose_quant("auto", cuda=True, n_params=3_000_000_000) == "4bit"
    assert choose_quant("auto", cuda=True, n_params=135_000_000) == "none"
    assert choose_quant("8bit", cuda=False) == "8bit"


def test_resolve_base_errors(tmp_path):
    with pytest.raises(BaseModelError, match="not found"):
        resolve_base(str(tmp_path / "nope"))
    with pytest.raises(BaseModelError, match="config.json"):
        resolve_base(str(tmp_path))


def test_cli_train_without_data_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path)])
    assert result.exit_code != 0
    assert "twin process" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "adapter").exists()


def test_cli_train_bad_flag(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path), "--quant", "3bit"])
    assert result.exit_code == 2 and "3bit" in result.output


# --------------------------------------------------------------------------- padding-free batches

def test_padding_free_batches_give_the_padded_loss(workspace, tiny_llama):
    """A padding-free batch (examples end to end, positions restarting per example) must give
    the same loss as the padded batch: attention stays within each example."""
    import torch

    losses = {}
    for padding_free in (True, False):
        trainer, _, _ = build_trainer(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=1,
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


def test_padding_free_would_notice_attention_across_examples(workspace, tiny_llama):
    """The check above can fail: the same row with positions that do not restart (one long
    sequence, so each example attends to the ones before it) gives another loss."""
    import torch

    trainer, _, _ = build_trainer(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=1),
                                  log=lambda *_: None)
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(6)]))
    trainer.model.eval()
    with torch.no_grad():
        packed = trainer.compute_loss(trainer.model, dict(batch)).item()
        flat = {"input_ids": batch["input_ids"], "labels": batch["labels"],
                "position_ids": torch.arange(batch["input_ids"].shape[1])[None]}
        leaking = trainer.compute_loss(trainer.model, flat).item()
    assert abs(packed - leaking) > 1e-3


# --------------------------------------------------------------------------- examples fitted to --max-length

def test_long_examples_lose_their_oldest_turns(tiny_llama):
    from transformers import AutoTokenizer

    from trainer.data import _length, fit_to_length

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    prepare_tokenizer(tokenizer)
    system = {"role": "system", "content": "you are me."}
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i} " * 6}
             for i in range(9)]
    reply = [{"role": "assistant", "content": f"the reply {DONE}"}]
    short = {"prompt": [system, turns[-1]], "completion": reply}
    long = {"prompt": [system, *turns], "completion": reply}
    limit = _length(tokenizer, [system, *turns[-3:], *reply])
    huge = {"prompt": [system, {"role": "user", "content": "word " * 400}], "completion": reply}

    rows, report = fit_to_length([short, long, huge], tokenizer, limit)
    assert (report.kept, report.shortened, report.dropped) == (2, 1, 1)
    assert rows[0] == short
    fitted = rows[1]
    assert fitted["prompt"] == [system, *turns[-3:]]  # the oldest turns went, the newest stayed
    assert fitted["completion"] == reply and _length(tokenizer, fitted["prompt"] + reply) <= limit
    assert fit_to_length([long], tokenizer, None)[0] == [long]


# --------------------------------------------------------------------------- best adapter, early stopping

def test_worse_validation_stops_early_and_keeps_the_best_adapter(workspace, tiny_llama):
    """A learning rate far too high makes the validation loss climb after the first evaluation:
    training stops after `patience` worse evaluations and the saved adapter is the best one."""
    from safetensors.torch import load_file

    options = TrainOptions(base=str(tiny_llama), max_steps=20, eval_steps=2, patience=1, learning_rate=3.0,
                           save_steps=100)
    said = []
    summary = run_training(Workspace(workspace), options, log=said.append)
    evals = [json.loads(line) for line in open(workspace / "adapter" / "train_log.jsonl")
             if "eval_loss" in json.loads(line)]
    losses = {e["step"]: e["eval_loss"] for e in evals}
    best_step = min(losses, key=losses.get)
    assert summary["stopped_early"] and summary["steps"] < 20
    assert summary["adapter_step"] == best_step < summary["steps"]
    assert summary["eval_loss"] == pytest.approx(losses[best_step])
    assert sum(1 for step in losses if step > best_step) == 1  # exactly `patience` worse evaluations
    assert any("stopped early" in line for line in said) and any("keeping the adapter from step" in line
                                                                   for line in said)
    saved = load_file(str(workspace / "adapter" / "adapter_model.safetensors"))
    best = load_file(str(workspace / "adapter" / "checkpoints" / "best" / "adapter_model.safetensors"))
    assert saved.keys() == best.keys() and all((saved[k] == best[k]).all() for k in saved)


def test_patience_zero_never_stops_early(workspace, tiny_llama):
    options = TrainOptions(base=str(tiny_llama), max_steps=20, eval_steps=2, patience=0, learning_rate=3.0,
                           save_steps=100)
    summary = run_training(Workspace(workspace), options, log=lambda *_: None)
    assert summary["steps"] == 20 and not summary["stopped_early"]


# --------------------------------------------------------------------------- what a run shows and logs

def test_progress_bar_shows_loss_tokens_per_second_and_eta(workspace, tiny_llama, capfd):
    run_training(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=6, save_steps=100,
                                                    tensorboard=False), log=print)
    err = capfd.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()
    bar = next(line for line in reversed(final) if line.startswith("training"))
    assert "6/6" in bar and "loss=" in bar and "tok/s=" in bar and "<" in bar  # elapsed<remaining
    assert "{'loss'" not in err  # no raw metric dicts
    steps = [json.loads(line) for line in open(workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps[-1]["tokens"] > steps[0]["tokens"] > 0  # tokens seen are counted


def test_tensorboard_logs_when_installed(workspace, tiny_llama):
    # tensorboard is a test dependency (pyproject's test extra): a missing one fails, never skips
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_training(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=10, save_steps=100),
                 log=lambda *_: None)
    runs = workspace / "adapter" / "runs"
    assert list(runs.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(runs))
    events.Reload()
    assert "train/loss" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("train/loss")] == [5, 10]


# --------------------------------------------------------------------------- QLoRA on CPU

def test_qlora_4bit_trains_on_cpu(workspace, tiny_llama):
    import bitsandbytes as bnb

    trainer, _, quant = build_trainer(Workspace(workspace), TrainOptions(base=str(tiny_llama), quant="4bit",
                                                                         max_steps=2, save_steps=100),
                                      log=lambda *_: None)
    assert quant == "4bit"
    linear4 = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4 and linear4[0].weight.quant_state.quant_type == "nf4"
    assert linear4[0].weight.quant_state.nested  # double quantization
    summary = run_training(Workspace(workspace), TrainOptions(base=str(tiny_llama), quant="4bit", max_steps=2,
                                                              save_steps=100), log=lambda *_: None)
    assert summary["quant"] == "4bit" and summary["steps"] == 2
    assert (workspace / "adapter" / "adapter_model.safetensors").is_file()


# --------------------------------------------------------------------------- reply-only LM head

def test_reply_only_lm_head_gives_the_same_loss_and_gradients(workspace, tiny_llama, monkeypatch):
    import torch
    import trl.trainer.utils as trl_utils

    from trainer.reply_logits import score_reply_positions_only

    trainer, _, _ = build_trainer(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=1),
                                  log=lambda *_: None)
    assert score_reply_positions_only() and trl_utils._use_triton(torch.device("cpu")) is True
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(6)]))
    lora = [p for p in trainer.model.parameters() if p.requires_grad]
    trainer.model.eval()  # no dropout: both passes see the same network

    def loss_and_grads():
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        return loss.item(), [p.grad.clone() for p in lora]

    reply_only = loss_and_grads()
    monkeypatch.setattr(trl_utils, "_use_triton", trl_utils._use_triton.original)  # TRL's own CPU path
    assert trl_utils._use_triton(torch.device("cpu")) is False
    every_position = loss_and_grads()
    assert reply_only[0] == pytest.approx(every_position[0], rel=1e-5)
    for a, b in zip(reply_only[1], every_position[1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- killed for real

def test_killed_run_resumes_from_its_last_complete_checkpoint(workspace, tiny_llama):
    """`twin train` killed with SIGKILL (no chance to clean up) mid-run, then `--resume`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from trainer.train import _last_checkpoint

    twin = [sys.executable, "-m", "twin_cli", "train", "-w", str(workspace), "--base", str(tiny_llama),
            "--save-steps", "3", "--no-tensorboard"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    checkpoints = workspace / "adapter" / "checkpoints"
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
    assert not (workspace / "adapter" / "adapter_model.safetensors").exists()
    resumed_from = int(Path(_last_checkpoint(checkpoints)).name.split("-")[1])
    assert resumed_from >= 6

    target = resumed_from + 3
    done = subprocess.run([*twin, "--resume", "--max-steps", str(target)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "from the beginning" not in done.stdout
    assert f"trained {target} steps" in done.stdout
    steps = [json.loads(line)["step"] for line in open(workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps[:resumed_from] == list(range(1, resumed_from + 1))  # the killed run's steps (and maybe more)
    assert steps[-3:] == [resumed_from + 1, resumed_from + 2, target]  # the resumed run went on from there
    assert (workspace / "adapter" / "adapter_model.safetensors").is_file()


def test_incomplete_checkpoint_is_not_resumed_from(tmp_path):
    from trainer.train import _last_checkpoint

    for step, state in ((2, "{}"), (4, "{}"), (6, None), (8, '{"global_st')):  # 6 and 8: killed while saving
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert _last_checkpoint(tmp_path / "missing") is None

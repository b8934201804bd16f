"""What a training run shows and records while it runs.

``JsonlLogCallback`` writes WORKSPACE/adapter/train_log.jsonl, one JSON object per step: the
step, epoch, tokens seen so far (prompt + reply, padding excluded) and elapsed time, and at
logging steps the loss and learning rate; evaluation lines carry ``eval_loss``. A resumed run
appends to the same file, so the log reads as one run.

``ProgressBarCallback`` replaces transformers' progress bar (steps/s, metrics printed as raw
dicts) with one tqdm bar showing the step, the latest training loss, tokens/s and the ETA, and
one plain line per validation.

In a multi-process run (``torchrun``, ``accelerate launch``) only the main process writes
the log and shows the bar; the others train silently.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class JsonlLogCallback(TrainerCallback):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.started = time.monotonic()

    def _write(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._write({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                     "tokens": getattr(state, "num_input_tokens_seen", 0),
                     "elapsed_s": round(time.monotonic() - self.started, 2)})

    def on_log(self, args, state, control, logs=None, **kwargs):
        numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if numbers and state.is_world_process_zero:
            self._write({"step": state.global_step, **numbers})


class ProgressBarCallback(TrainerCallback):
    """step i/N [elapsed<ETA] loss, tok/s; tokens/s counts this session only (not a resumed run's past)."""

    def __init__(self, write=None):
        self.bar = None
        self.write = write
        self.loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return  # under torchrun / accelerate launch only the main process shows a bar
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", desc="training",
                        dynamic_ncols=True)
        self.start_step, self.start_tokens = state.global_step, state.num_input_tokens_seen
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is None:
            return
        self.bar.update(state.global_step - self.bar.n)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        postfix = {"tok/s": f"{(state.num_input_tokens_seen - self.start_tokens) / elapsed:.0f}"}
        if self.loss is not None:
            postfix = {"loss": f"{self.loss:.3f}", **postfix}
        self.bar.set_postfix(postfix, refresh=False)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])
        if "eval_loss" in logs and state.is_world_process_zero:
            self._say(f"step {state.global_step} (epoch {state.epoch or 0:.2f}): validation loss {logs['eval_loss']:.4f}")

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        elif self.write is not None:
            self.write(line)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

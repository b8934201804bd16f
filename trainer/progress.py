"""Training progress written to WORKSPACE/adapter/train_log.jsonl, one JSON object per step.

Each line has the step, epoch, tokens seen so far and, at logging steps, the loss and learning
rate; evaluation lines carry ``eval_loss``. A resumed run appends to the same file, so the log
reads as one run.
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
        self._write({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                     "tokens": getattr(state, "num_input_tokens_seen", 0),
                     "elapsed_s": round(time.monotonic() - self.started, 2)})

    def on_log(self, args, state, control, logs=None, **kwargs):
        numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if numbers:
            self._write({"step": state.global_step, **numbers})

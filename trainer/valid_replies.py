"""During training, at each validation: does the twin end its replies, and does it loop?

The validation loss alone does not say whether the twin has learned to stop: on a small
dataset the loss can be at its lowest while greedy replies still run to the token limit or
repeat ``i'm coming | i'm coming | ...``. So at every validation, :class:`ValidRepliesCallback`
generates greedy replies to (up to ``limit``) valid prompts, under the twin's own token cap and
decoding contract (``voice.decoding.greedy``; the same cap as eval and the server), and adds to
the evaluation's metrics

- ``eval_termination_rate``: share of replies that ended with DONE / end of turn by themselves,
- ``eval_loop_rate``: share that repeat a message or a run of words (``trainer.fidelity.loops``),
- ``eval_empty_rate``: share that came out empty (no retries here: the model's own rate).

It runs before ``trainer.best_adapter.BestAdapterCallback`` (callbacks see the same metrics
dict in order), which keeps the adapter best on these as well as on the loss. Each validation's
figures are also appended to WORKSPACE/adapter/train_log.jsonl and printed.
"""
from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback

from core.settings import Sampling
from voice.decoding import greedy
from voice.hf import generate_replies

from . import fidelity

LIMIT = 16


class ValidRepliesCallback(TrainerCallback):
    def __init__(self, rows: list[dict], tokenizer, limit: int = LIMIT, log_path: Path | None = None, write=None,
                 sampling: Sampling | None = None):
        self.prompts = [r["prompt"] for r in rows[:limit]]
        self.tokenizer = tokenizer
        self.decoding = greedy(sampling)
        self.log_path = Path(log_path) if log_path else None
        self.write = write

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if metrics is None or model is None or not self.prompts:
            return
        # greedy and without retries: draws nothing from training's random stream
        replies = generate_replies(model, self.tokenizer, self.prompts, self.decoding, tries=1)
        texts = [r.text for r in replies]
        figures = {
            "eval_termination_rate": round(sum(r.terminated for r in replies) / len(replies), 4),
            "eval_loop_rate": fidelity.loop_rate(texts),
            "eval_empty_rate": fidelity.empty_rate(texts),
        }
        metrics.update(figures)
        if args.process_index == 0 and self.log_path is not None:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, **figures}) + "\n")
        if self.write is not None:
            self.write(f"step {state.global_step}: valid replies end by themselves {figures['eval_termination_rate']:.0%}, "
                       f"loop {figures['eval_loop_rate']:.0%}, empty {figures['eval_empty_rate']:.0%}")


def fidelity_penalty(metrics: dict) -> float | None:
    """How far the valid replies are from ending cleanly: (1 - termination) + loop + empty
    rates (0 best), or None when the metrics do not carry them."""
    if "eval_termination_rate" not in metrics:
        return None
    return round((1 - metrics["eval_termination_rate"]) + metrics.get("eval_loop_rate", 0.0)
                 + metrics.get("eval_empty_rate", 0.0), 4)

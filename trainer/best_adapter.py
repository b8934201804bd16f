"""Keeping the adapter with the lowest validation loss, and stopping when it stops improving.

transformers has both ideas (``load_best_model_at_end`` and ``EarlyStoppingCallback``) but ties
them to checkpoints: the best model can only be one of the saved checkpoints, so saving must
follow the evaluation schedule, and ``save_total_limit`` then fights with resuming. Here the
schedules are independent: checkpoints every ``--save-steps`` for ``--resume``, validation each
epoch (or every ``--eval-steps``), and this callback copies the LoRA weights (a few MB) to
``adapter/checkpoints/best/`` whenever the validation loss improves. ``run_training`` puts those
weights back before saving the final adapter if a later evaluation was worse.

The callback's state (best loss, its step, evaluations without improvement) is saved in every
checkpoint's ``trainer_state.json`` (``ExportableState``), so a resumed run keeps counting from
the checkpoint's moment. ``best/best.json`` names the step whose weights ``best/`` holds: after
a resume the directory may hold a later step than the restored state knows of, and such
weights are never taken for the remembered best.

"Best" looks at the valid replies as well as at the loss when the evaluation's metrics carry
their termination, loop and empty rates (``trainer.valid_replies``), summed as a fidelity
penalty (0: every reply ends by itself, none loops or is empty). On a small dataset the loss
can bottom out before the twin has learned to stop, so an adapter whose penalty is lower by
more than :data:`FIDELITY_MARGIN` is better as long as its loss is within
:data:`LOSS_TOLERANCE` of the best one's; with about the same penalty the lower loss wins, and a
clearly higher penalty never does. Without those metrics it is the lowest loss, as before.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from core.atomic import atomic_dir

from .valid_replies import fidelity_penalty

FIDELITY_MARGIN = 0.05   # 5 points of termination / loop / empty rate
LOSS_TOLERANCE = 0.10    # a loss at most 10% above the best one's


def better(loss: float, penalty: float | None, best_loss: float, best_penalty: float | None,
           min_delta: float = 0.0) -> bool:
    """Whether an evaluation (validation loss, fidelity penalty or None) beats the best so far."""
    if penalty is None or best_penalty is None or math.isinf(best_loss):
        return loss < best_loss - min_delta
    if penalty < best_penalty - FIDELITY_MARGIN:
        return loss <= best_loss * (1 + LOSS_TOLERANCE)
    if penalty <= best_penalty + FIDELITY_MARGIN:
        return loss < best_loss - min_delta
    return False


class BestAdapterCallback(TrainerCallback, ExportableState):
    """Track ``eval_loss`` (and the valid replies' fidelity penalty when measured); save the best
    adapter; stop after ``patience`` evaluations without an improvement (:func:`better`;
    ``patience`` 0: never stop early)."""

    # transformers rebuilds a resumed callback as type(cb)(**state()["args"]): JSON-friendly args only
    def __init__(self, best_dir: str, patience: int = 1, min_delta: float = 0.0):
        self.best_dir = Path(best_dir)
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_penalty: float | None = None
        self.best_step: int | None = None
        self.last_step: int | None = None      # the step of the latest evaluation
        self.evals_without_improvement = 0
        self.stopped_early = False

    # ExportableState: what a checkpoint remembers
    def state(self) -> dict:
        return {"args": {"best_dir": str(self.best_dir), "patience": self.patience, "min_delta": self.min_delta},
                "attributes": {"best_loss": self.best_loss, "best_penalty": self.best_penalty,
                               "best_step": self.best_step, "last_step": self.last_step,
                               "evals_without_improvement": self.evals_without_improvement,
                               "stopped_early": self.stopped_early}}

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if loss is None or model is None:
            return
        penalty = fidelity_penalty(metrics)
        self.last_step = state.global_step
        if better(float(loss), penalty, self.best_loss, self.best_penalty, self.min_delta):
            self.best_loss, self.best_penalty, self.best_step = float(loss), penalty, state.global_step
            self.evals_without_improvement = 0
            if not state.is_world_process_zero:
                return  # every rank keeps the same record (metrics are gathered); rank 0 writes
            with atomic_dir(self.best_dir) as tmp:
                model.save_pretrained(tmp)
                (tmp / "best.json").write_text(json.dumps({"step": self.best_step, "eval_loss": self.best_loss,
                                                           "fidelity_penalty": penalty}))
            return
        self.evals_without_improvement += 1
        if self.patience and self.evals_without_improvement >= self.patience and not control.should_training_stop:
            self.stopped_early = state.global_step < state.max_steps
            control.should_training_stop = True

    def restore_best(self, model, current_loss: float | None) -> bool:
        """Load the best saved weights into ``model`` (a PEFT model) unless the weights training
        ended with are the best (evaluated last and kept) or, never evaluated, have a loss
        ``current_loss`` no worse; True if they were loaded."""
        weights = self.best_dir / "adapter_model.safetensors"
        if self.best_step is None or not weights.is_file() or self.saved_step() != self.best_step:
            return False
        if self.last_step is not None and self.last_step == self.best_step:
            return False
        if self.last_step is None and current_loss is not None and current_loss <= self.best_loss:
            return False
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(weights)))
        return True

    def saved_step(self) -> int | None:
        try:
            return json.loads((self.best_dir / "best.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            return None

    def clear(self) -> None:
        shutil.rmtree(self.best_dir, ignore_errors=True)

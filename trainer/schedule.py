"""How long ``twin train`` runs by default: a number of epochs that fits the dataset's size.

A fixed 3 epochs is 225 optimizer steps on the bundled sample (~600 examples), enough for the
twin to learn to end its replies with ``DONE`` and to split them with `` | ``, but only ~35
steps for a person with ~100 reply pairs, whose twin then neither stops nor splits. So the
default is at least :data:`TARGET_STEPS` optimizer steps (and at least 3 epochs, at most
:data:`MAX_EPOCHS`), validated after every epoch; early stopping
(``trainer.best_adapter``, with a patience that grows with the number of validations) ends
the run when neither the validation loss nor the valid replies' termination and loop rates
improve any more, and the best adapter is the one kept. ``--epochs`` / ``--max-steps`` override it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TARGET_STEPS = 225    # what the 3-epoch default run on the sample had: it ends and splits replies
MIN_EPOCHS = 3
MAX_EPOCHS = 20


@dataclass
class Schedule:
    epochs: int
    steps_per_epoch: int
    patience: int          # validations without improvement before stopping early

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def plan(examples: int, batch_size: int, grad_accum: int = 1, processes: int = 1) -> Schedule:
    """The default schedule for ``examples`` training examples (one validation per epoch)."""
    per_step = max(1, batch_size * grad_accum * processes)
    steps_per_epoch = max(1, math.ceil(examples / per_step))
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / steps_per_epoch)))
    return Schedule(epochs, steps_per_epoch, patience_for(epochs))


def patience_for(epochs: float) -> int:
    """Validations without improvement before stopping: one bad validation among many is
    noise, so more of them are allowed when there are more."""
    return 1 if epochs <= MIN_EPOCHS else 2 if epochs <= 8 else 3

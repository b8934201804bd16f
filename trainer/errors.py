"""The training stage's errors, on core's one error base (so every command exits alike).

- :class:`TrainingError` (exit 1): training failed inside twin or a library it drives.
- :class:`TrainingInputError` (exit 2): something the user can fix: a missing or empty
  workspace, data that is not prompt/completion records, no example fitting ``--max-length``.
- :class:`BaseModelError` (exit 2): the base model asked for (``--base``, or the one recorded
  in twin.toml) cannot be found or prepared.
- :class:`EvalError` (exit 2): ``twin eval`` lacks what it measures (an adapter, the test split,
  an exported model asked for with ``--runtime llama``).
"""
from __future__ import annotations

from core.errors import InputError, TwinError


class TrainingError(TwinError):
    """Training cannot go on."""


class TrainingInputError(TrainingError, InputError):
    """Training cannot start because of its input (workspace, data, options)."""


class BaseModelError(TrainingInputError):
    """The base model cannot be found or prepared."""


class EvalError(TrainingInputError):
    """Evaluation cannot run (no adapter, no test split, no exported model where one was asked
    for): the user runs the missing stage."""

"""Errors of the export stage, on core's error base (so every command reports them alike).

- ``ExportError`` (exit 1): something went wrong while converting, quantizing or checking
  (llama.cpp refusing a file, a parity check that fails, a write that fails).
- ``ExportInputError`` (exit 2): what the user can fix: no adapter, no base model, a base
  and an adapter that do not fit together.
- ``UnsupportedModelError`` (exit 2): the model (architecture, tokenizer, RoPE variant,
  adapter kind) cannot be exported; the message says what is supported.

``core.errors.cli_errors`` turns each into one line and its exit code.
"""
from __future__ import annotations

from core.errors import InputError, TwinError


class ExportError(TwinError):
    """An expected failure of the export stage (one readable line, exit 1)."""


class ExportInputError(ExportError, InputError):
    """Export input the user can fix: a missing adapter or base model (exit 2)."""


class UnsupportedModelError(ExportInputError):
    """The model (architecture, tokenizer, RoPE variant, ...) cannot be exported (exit 2)."""

"""Errors of the export stage.

Every expected failure (no adapter, unsupported architecture or tokenizer, unknown quant
type, llama.cpp refusing a file, a parity check that fails) is raised as ``ExportError``
with a message that reads well as one line; ``export.cli`` shows it without a traceback.
"""
from __future__ import annotations


class ExportError(Exception):
    """An expected, user-facing failure of the export stage (one readable line)."""


class UnsupportedModelError(ExportError):
    """The model (architecture, tokenizer, RoPE variant, ...) cannot be exported yet."""

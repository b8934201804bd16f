"""Fixtures of the export tests: tiny models of each family, built once per test session."""
from __future__ import annotations

import pytest

from helpers.export_models import TinyModels


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    """Tiny HF model directories by family: ``tiny["llama"]``, ``tiny["gemma3"]``, ``tiny["spm"]`` ..."""
    return TinyModels(tmp_path_factory.mktemp)

"""Shared fixtures: tiny models built once per test session, sample paths, workspaces."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as twin_cli does; before torch / llama_cpp load

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

SAMPLE_CSV = ROOT / "samples" / "imessage" / "messages.csv"
SAMPLE_FACTS = ROOT / "samples" / "facts.toml"


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random llama model + BPE tokenizer (ChatML template) in a HF directory."""
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def sample_workspace(tmp_path_factory) -> Path:
    """A workspace processed from the bundled sample (data only)."""
    from dataprocess.pipeline import run_process
    from core.workspace import Workspace

    root = tmp_path_factory.mktemp("sample-ws")
    run_process([SAMPLE_CSV], Workspace(root), facts_path=SAMPLE_FACTS)
    return root


@pytest.fixture(scope="session")
def tiny_gguf(tiny_llama, tmp_path_factory) -> Path:
    """The tiny llama model written as an F16 GGUF (through the export stage's writer)."""
    from export.gguf_writer import write_gguf

    return write_gguf(tiny_llama, tmp_path_factory.mktemp("tiny-gguf") / "twin-F16.gguf", "F16")

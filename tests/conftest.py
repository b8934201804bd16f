"""Shared fixtures: tiny models built once per test session, sample paths, workspaces."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as twin_cli does; before torch / llama_cpp load

import pytest

from helpers.paths import SAMPLE_CSV, SAMPLE_FACTS  # noqa: E402


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random llama model + BPE tokenizer (ChatML template) in a HF directory."""
    from helpers.tiny import build_tiny_model

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


@pytest.fixture
def train_workspace(sample_workspace, tmp_path) -> Path:
    """A private copy of the processed sample workspace, trimmed so tiny training runs stay quick."""
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(sample_workspace, root)
    for split, keep in (("train", 64), ("valid", 8), ("test", 8)):
        path = root / "data" / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:keep]
        path.write_text("".join(lines), encoding="utf-8")
    return root


@pytest.fixture
def own_twin_cache(tmp_path, monkeypatch) -> Path:
    """twin's cache ($TWIN_CACHE) in the test's own directory: this machine's stays as it was."""
    monkeypatch.setenv("TWIN_CACHE", str(tmp_path / "twin-cache"))
    return tmp_path / "twin-cache"

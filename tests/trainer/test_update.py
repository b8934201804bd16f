"""trainer.update: `twin update` continues training from the current adapter on the new examples
plus a replay of old ones, records what was new, and leaves the previous twin in place when it
has nothing to learn or is interrupted."""
import csv
import json
import shutil

import pytest
from click.testing import CliRunner

from core.workspace import Workspace
from dataprocess.pipeline import run_process
from helpers.paths import SAMPLE_CSV
from trainer.train import TrainOptions, run_training
from trainer.update import UpdateOptions, run_update
from twin_cli import main

@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory):
    """twin's cache ($TWIN_CACHE) of this module's own (where the tiny base is remembered)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TWIN_CACHE", str(tmp_path_factory.mktemp("twin-cache")))
        yield


def _lora(adapter_dir):
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def trained_old(tmp_path_factory, tiny_llama):
    """A workspace processed from the sample's first 90% and trained a few steps (the LoRA's B
    matrices, zero in a fresh adapter, are clearly not zero any more)."""
    root = tmp_path_factory.mktemp("update")
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    cut = 1 + int((len(rows) - 1) * 0.9)
    with open(root / "old.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows[:cut])
    ws = Workspace(root / "ws")
    run_process([root / "old.csv"], ws, make_charts=False)
    for split, keep in (("valid", 8), ("test", 8)):  # quick validations
        path = ws.split_path(split)
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:keep]))
    run_training(ws, TrainOptions(base=str(tiny_llama), max_steps=4, learning_rate=5e-2, eval_steps=100),
                 log=lambda *_: None)
    return root, ws


@pytest.fixture
def workspace(trained_old, tmp_path):
    root, ws = trained_old
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(ws.root, copy.root)
    return root, copy


def test_update_continues_from_the_adapter(workspace):
    root, ws = workspace
    before = _lora(ws.adapter_dir)
    assert max(t.abs().max().item() for k, t in before.items() if "lora_B" in k) > 1e-3  # trained, not fresh
    train_before = ws.split_path("train").read_text().splitlines()
    base_before = ws.settings().train.base
    # a tiny learning rate: weights that start from the old adapter stay next to it; a fresh LoRA
    # (B = 0, A random) would be far from it
    result = run_update([SAMPLE_CSV], ws, UpdateOptions(max_steps=2, learning_rate=1e-6, evaluate=False),
                        log=lambda *_: None)
    after = _lora(ws.adapter_dir)
    assert result.trained["steps"] == 2 and result.new_messages > 0 and result.duplicate_messages > 0
    assert set(after) == set(before)
    changed = [k for k in before if not (after[k] == before[k]).all()]
    assert changed  # it trained ...
    for key in before:  # ... from the old weights
        assert (after[key] - before[key]).abs().max().item() < 1e-3, key
    train_after = ws.split_path("train").read_text().splitlines()
    assert train_after[:len(train_before)] == train_before
    assert len(train_after) == len(train_before) + result.new_examples["train"]
    report = json.loads((ws.data_dir / "report.json").read_text())
    assert report["updates"][-1]["new_messages"] == result.new_messages
    assert ws.settings().train.steps == 2 and ws.settings().train.base == base_before  # the same base
    assert not [p for p in ws.data_dir.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_normal_update_moves_the_adapter(workspace):
    _, ws = workspace
    before = _lora(ws.adapter_dir)
    run_update([SAMPLE_CSV], ws, UpdateOptions(max_steps=3, learning_rate=5e-2, evaluate=False), log=lambda *_: None)
    after = _lora(ws.adapter_dir)
    assert max((after[k] - before[k]).abs().max().item() for k in before) > 1e-3


def test_the_same_export_again_changes_nothing(workspace):
    root, ws = workspace
    snapshot = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["update", "--workspace", str(ws.root), str(root / "old.csv")])
    assert result.exit_code == 0, result.output
    assert "nothing new" in result.output and "Traceback" not in result.output
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()} == snapshot


def test_an_interrupted_update_leaves_the_previous_twin(workspace, monkeypatch):
    _, ws = workspace
    snapshot = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("trainer.update.run_training", interrupted)
    result = CliRunner().invoke(main, ["update", "--workspace", str(ws.root), str(SAMPLE_CSV), "--max-steps", "1"])
    assert result.exit_code == 130 and "previous model is still in place" in result.output
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()} == snapshot


def test_update_needs_a_trained_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run_process([SAMPLE_CSV], ws, make_charts=False)
    result = CliRunner().invoke(main, ["update", "--workspace", str(ws.root), str(SAMPLE_CSV)])
    assert result.exit_code == 2 and "twin train" in result.output and "Traceback" not in result.output


def test_update_re_exports_the_gguf_of_the_new_adapter(workspace):
    from core.artifacts import GGUF_KEY_ADAPTER
    from core.base_ref import adapter_fingerprint
    from export.pipeline import ExportOptions, run_export
    from helpers.export_models import gguf_field, gguf_reader

    _, ws = workspace
    run_export(ws, ExportOptions(quant="F16", verify="off"), log=lambda *_: None)
    gguf = ws.model_gguf("F16")
    old_fingerprint = gguf_field(gguf_reader(gguf), GGUF_KEY_ADAPTER)
    result = run_update([SAMPLE_CSV], ws, UpdateOptions(max_steps=3, learning_rate=5e-2, evaluate=False, verify="off"),
                        log=lambda *_: None)
    assert result.exported == gguf and sorted(p.name for p in ws.model_dir.glob("*.gguf")) == [gguf.name]
    new_fingerprint = gguf_field(gguf_reader(gguf), GGUF_KEY_ADAPTER)
    assert new_fingerprint == adapter_fingerprint(ws.adapter_dir) != old_fingerprint


def test_a_missing_export_is_an_error_not_nothing_new(workspace, tmp_path):
    _, ws = workspace
    result = CliRunner().invoke(main, ["update", "--workspace", str(ws.root), str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "no such file" in result.output and "unchanged" not in result.output

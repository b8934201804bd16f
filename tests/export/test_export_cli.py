"""`twin export`: one line and exit 2 for what the user can fix; the pipeline behind it."""
from __future__ import annotations

import json

from helpers.export_models import copy_model, edit_config, make_adapter


def _run_cli(*args: str):
    from click.testing import CliRunner

    from export.cli import export_command

    return CliRunner().invoke(export_command, list(args))


def _error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_missing_adapter(tmp_path):
    (tmp_path / "ws").mkdir()
    result = _run_cli("--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "no trained adapter" in _error_line(result) and "twin train" in result.output
    assert result.output.count("\n") == 1  # exactly one line
    assert list((tmp_path / "ws").iterdir()) == []


def test_missing_workspace(tmp_path):
    result = _run_cli("--workspace", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "does not exist" in _error_line(result)


def test_bad_quant(tmp_path):
    result = _run_cli("--workspace", str(tmp_path), "--quant", "Q9_Z")
    assert result.exit_code == 2
    line = _error_line(result)
    assert "--quant" in line and "Q4_K_M" in line


def test_unsupported_architecture_fails_before_writing(tiny, tmp_path):
    base = edit_config(copy_model(tiny["llama"], tmp_path / "base"), model_type="gpt2")
    adapter = tmp_path / "ws" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    result = _run_cli("--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2
    line = _error_line(result)
    assert "unsupported architecture 'gpt2'" in line and "Gemma 3" in line
    assert not (tmp_path / "ws" / "model").exists()


def test_missing_base_model(tmp_path):
    adapter = tmp_path / "ws" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    result = _run_cli("--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "not on this machine" in _error_line(result)


def test_exports_a_workspace(tiny, tmp_path):
    ws = tmp_path / "ws"
    make_adapter(tiny["llama"], ws / "adapter")
    result = _run_cli("--workspace", str(ws), "--quant", "f16")
    assert result.exit_code == 0, result.output
    assert "F16: top-1 agreement" in result.output  # passing: every position agrees or is a near-tie
    assert sorted(p.name for p in (ws / "model").iterdir()) == ["Modelfile", "twin-F16.gguf"]
    assert 'SYSTEM """you are me. ' in (ws / "model" / "Modelfile").read_text()  # default persona


def test_lora_only(tiny, tmp_path):
    ws = tmp_path / "ws"
    make_adapter(tiny["qwen2"], ws / "adapter")
    result = _run_cli("--workspace", str(ws), "--lora-only")
    assert result.exit_code == 0, result.output
    assert "F16 base + LoRA: top-1 agreement 100.0%" in result.output
    assert sorted(p.name for p in (ws / "model").iterdir()) == ["twin-lora-F16.gguf"]  # no merge


def test_lora_only_and_also_lora_exclude_each_other(tmp_path):
    result = _run_cli("--workspace", str(tmp_path), "--lora-only", "--also-lora")
    assert result.exit_code == 2 and "exclude each other" in result.output
    assert not (tmp_path / "model").exists()


def test_help_says_what_the_check_costs():
    result = _run_cli("--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--verify [full|quick|off]" in text and "one layer at a time" in text and "16-bit size" in text
    assert "--keep-merged" in text

"""trainer.cli: `twin train`'s options take TrainOptions' defaults; bad input is one line and exit 2."""
import dataclasses

from click.testing import CliRunner

from trainer.cli import train_command
from trainer.train import TrainOptions
from twin_cli import main


def test_cli_train_without_data_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "twin process" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "adapter").exists()


def test_cli_train_missing_workspace_is_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output


def test_cli_train_bad_base_is_exit_2(train_workspace, tmp_path):
    result = CliRunner().invoke(main, ["train", "-w", str(train_workspace), "--base", str(tmp_path / "no-model")])
    assert result.exit_code == 2 and "not found" in result.output and "Traceback" not in result.output


def test_cli_train_bad_flag(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path), "--quant", "3bit"])
    assert result.exit_code == 2 and "3bit" in result.output


def test_option_defaults_are_train_options_defaults():
    defaults = TrainOptions()
    by_name = {p.name: p for p in train_command.params}
    for field in dataclasses.fields(TrainOptions):
        if field.name in by_name:
            assert by_name[field.name].default == getattr(defaults, field.name), field.name
    options = {p.name for p in train_command.params} - {"workspace", "help"}
    assert options <= {f.name for f in dataclasses.fields(TrainOptions)}  # every option is a TrainOptions field

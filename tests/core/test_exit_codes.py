"""Every command: bad input or a missing earlier step is one line and exit status 2."""
import pytest
from click.testing import CliRunner

from twin_cli import main

EMPTY_WORKSPACE_COMMANDS = [
    ["train"],
    ["eval"],
    ["export"],
    ["serve"],
    ["chat"],
]


@pytest.mark.parametrize("args", EMPTY_WORKSPACE_COMMANDS, ids=lambda a: a[0])
def test_an_empty_workspace_exits_2_without_traceback(tmp_path, args):
    (tmp_path / "ws").mkdir()
    result = CliRunner().invoke(main, [*args, "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("Error:") and len(result.output.strip().splitlines()) == 1
    assert "twin " in result.output          # it says which command to run first
    assert list((tmp_path / "ws").iterdir()) == []   # and wrote nothing


@pytest.mark.parametrize("args", [
    ["process", "/no/such/export.txt", "--workspace", "{ws}"],
    ["train", "--workspace", "{ws}", "--epochs", "-1"],
    ["export", "--workspace", "{ws}", "--quant", "Q9_X"],
    ["serve", "--workspace", "{ws}", "--port", "70000"],
    ["frobnicate"],
], ids=lambda a: a[0])
def test_bad_input_and_usage_exit_2(tmp_path, args):
    ws = tmp_path / "ws"
    result = CliRunner().invoke(main, [a.format(ws=ws) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not ws.exists()

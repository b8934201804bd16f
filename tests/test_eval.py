"""`twin eval` on a tiny model trained a few steps: report keys and ranges, chart, errors."""
import json
import shutil

import pytest
from click.testing import CliRunner

from core.workspace import Workspace
from trainer.evaluate import EvalOptions, run_eval, style, vocabulary_overlap
from trainer.train import TrainOptions, run_training
from twin_cli import main


@pytest.fixture(scope="module")
def trained_workspace(sample_workspace, tiny_llama, tmp_path_factory):
    """The sample data cut to a few examples, with a tiny model trained to overfit them."""
    root = tmp_path_factory.mktemp("eval") / "ws"
    shutil.copytree(sample_workspace, root)
    test_rows = (root / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    (root / "data" / "test.jsonl").write_text("\n".join(test_rows) + "\n", encoding="utf-8")
    # train on the test rows themselves (8 copies) so a few steps visibly lower their perplexity
    (root / "data" / "train.jsonl").write_text("\n".join(test_rows * 8) + "\n", encoding="utf-8")
    (root / "data" / "valid.jsonl").unlink()
    run_training(Workspace(root), TrainOptions(base=str(tiny_llama), max_steps=12, learning_rate=5e-3),
                 log=lambda *_: None)
    return root


def test_eval_report(trained_workspace):
    report = run_eval(Workspace(trained_workspace), EvalOptions(limit=3, max_new_tokens=8), log=lambda *_: None)
    saved = json.loads((trained_workspace / "eval" / "report.json").read_text())
    assert saved == report
    assert report["test_examples"] == 4 and report["generated"] == 3
    ppl = report["perplexity"]
    assert 1 < ppl["twin"] < ppl["base"]  # a few steps on these replies lowered their perplexity
    for who in ("twin", "base"):
        assert 0 <= report["termination_rate"][who] <= 1
        figures = report["style"][who]
        assert all(0 <= figures[k] <= 1 for k in ("lowercase_rate", "separator_rate", "emoji_rate",
                                                   "vocabulary_overlap"))
    assert report["style"]["real"]["lowercase_rate"] == 1.0
    assert len(report["examples"]) == 3 and all("DONE" not in ex["twin"] for ex in report["examples"])
    assert (trained_workspace / "eval" / "style.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_style_figures():
    figures = style(["yeah | bartaco?", "Sure.", "lol 😂"])
    assert figures["lowercase_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert figures["separator_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert figures["emoji_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert vocabulary_overlap(["omg tacos", "hello"], ["omg", "tacos tonight"]) == pytest.approx(2 / 3, abs=1e-3)


def test_eval_cli_errors(tmp_path, sample_workspace):
    result = CliRunner().invoke(main, ["eval", "--workspace", str(tmp_path)])
    assert result.exit_code == 1 and "twin process" in result.output and "Traceback" not in result.output
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace, ws)
    result = CliRunner().invoke(main, ["eval", "--workspace", str(ws)])
    assert result.exit_code == 1 and "no trained adapter" in result.output
    assert not (ws / "eval").exists()

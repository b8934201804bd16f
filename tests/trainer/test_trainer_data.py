"""trainer.data: the splits as the trainer reads them, fitted to --max-length."""
import pytest

from core.errors import InputError
from core.terminator import DONE
from core.workspace import Workspace
from trainer.data import _length, fit_to_length, load_split
from trainer.tokens import prepare_tokenizer


def test_long_examples_lose_their_oldest_turns(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    prepare_tokenizer(tokenizer)
    system = {"role": "system", "content": "you are me."}
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i} " * 6}
             for i in range(9)]
    reply = [{"role": "assistant", "content": f"the reply {DONE}"}]
    short = {"prompt": [system, turns[-1]], "completion": reply}
    long = {"prompt": [system, *turns], "completion": reply}
    limit = _length(tokenizer, [system, *turns[-3:], *reply])
    huge = {"prompt": [system, {"role": "user", "content": "word " * 400}], "completion": reply}

    rows, report = fit_to_length([short, long, huge], tokenizer, limit)
    assert (report.kept, report.shortened, report.dropped) == (2, 1, 1)
    assert rows[0] == short
    fitted = rows[1]
    assert fitted["prompt"] == [system, *turns[-3:]]  # the oldest turns went, the newest stayed
    assert fitted["completion"] == reply and _length(tokenizer, fitted["prompt"] + reply) <= limit
    assert fit_to_length([long], tokenizer, None)[0] == [long]


def test_missing_or_malformed_data_is_bad_input(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    with pytest.raises(InputError, match="does not exist"):
        load_split(workspace, "train")
    (tmp_path / "ws" / "data").mkdir(parents=True)
    with pytest.raises(InputError, match="twin process"):
        load_split(workspace, "train")
    assert load_split(workspace, "valid") is None  # optional
    workspace.split_path("train").write_text("\n")
    with pytest.raises(InputError, match="no examples"):
        load_split(workspace, "train")
    workspace.split_path("train").write_text('{"prompt": []}\n')
    with pytest.raises(InputError, match="train.jsonl:1"):
        load_split(workspace, "train")

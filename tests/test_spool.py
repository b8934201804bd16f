"""dataprocess.spool: examples spooled to disk, deduplicated, then written to their splits."""
import json

import pytest

from core.artifacts import SPLITS
from dataprocess.examples import split_by_conversation
from dataprocess.report import SplitSummary, summarize_splits
from dataprocess.spool import ExampleSpool


def _example(conversation, incoming, reply, source="chat"):
    return {"prompt": [{"role": "system", "content": "you are maya."}, {"role": "user", "content": incoming}],
            "completion": [{"role": "assistant", "content": reply + " DONE"}],
            "conversation": conversation, "source": source}


def _examples():
    rows = []
    for c in range(12):
        for k in range(5):
            rows.append(_example(f"alex#{c}", f"msg {c} {k}\twith tab", f"reply {k} | ok ✓"))
    rows.append(_example("alex#3", "msg 3 0\twith tab", "reply 0 | ok ✓"))   # a duplicate
    return rows


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_splits_match_the_in_memory_split_and_drop_duplicates(tmp_path):
    rows = _examples()
    paths = {split: tmp_path / f"{split}.jsonl" for split in SPLITS}
    facts = [_example("facts", "where do u live?", "oakland", source="facts")]
    summary = SplitSummary()
    with ExampleSpool() as spool:
        for row in rows:
            spool.add(row)
        assert spool.duplicates == 1 and spool.count == 60
        counts = spool.write_splits(paths, (0.8, 0.1, 0.1), 7, facts, summary)
        spool_file = spool.path
    summary.finish()
    assert not spool_file.exists()
    expected = split_by_conversation(rows[:-1], (0.8, 0.1, 0.1), 7)
    expected["train"] = expected["train"] + facts
    written = {split: _read(paths[split]) for split in SPLITS}
    assert written == expected
    assert counts == {split: len(expected[split]) for split in SPLITS}
    reference = summarize_splits(expected)
    assert (summary.examples, summary.tokens, summary.reply_lengths, summary.words) == \
        (reference.examples, reference.tokens, reference.reply_lengths, reference.words)


def test_keep_duplicates_when_asked(tmp_path):
    with ExampleSpool(dedupe=False) as spool:
        for row in _examples():
            spool.add(row)
        assert spool.count == 61 and spool.duplicates == 0


def test_a_failure_while_writing_leaves_no_split_file(tmp_path):
    class Boom(SplitSummary):
        def add(self, split, example):
            if split == "test":
                raise RuntimeError("disk full")
            super().add(split, example)

    paths = {split: tmp_path / f"{split}.jsonl" for split in SPLITS}
    with ExampleSpool() as spool:
        for row in _examples():
            spool.add(row)
        with pytest.raises(RuntimeError):
            spool.write_splits(paths, (0.8, 0.1, 0.1), 0, [], Boom())
    assert list(tmp_path.iterdir()) == []

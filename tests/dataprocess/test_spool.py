"""dataprocess.spool: examples spooled to disk, deduplicated, then written to their splits."""
import json

import pytest

from core.artifacts import SPLITS
from dataprocess.examples import split_by_conversation
from dataprocess.spool import ExampleSpool, example_texts, token_sizes, word_sizes


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
    with ExampleSpool() as spool:
        added = [spool.add(row) for row in rows]
        assert added == [True] * 60 + [False]
        assert spool.duplicates == 1 and spool.count == 60
        counts, words = spool.write_splits(paths, (0.8, 0.1, 0.1), 7, facts)
        spool_file = spool.path
    assert not spool_file.exists()
    expected = split_by_conversation(rows[:-1], (0.8, 0.1, 0.1), 7)
    expected["train"] = expected["train"] + facts
    written = {split: _read(paths[split]) for split in SPLITS}
    assert written == expected
    assert counts == {split: len(expected[split]) for split in SPLITS}
    assert words == {split: sum(word_sizes(expected[split])) for split in SPLITS}
    assert words["train"] > 0


def test_sizes_in_tokens_follow_each_example(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    rows = _examples()[:-1]
    sizes = token_sizes(tokenizer)(rows)
    assert sizes == [sum(len(tokenizer.encode(text).ids) for text in example_texts(row)) for row in rows]
    paths = {split: tmp_path / f"{split}.jsonl" for split in SPLITS}
    with ExampleSpool(sizes=token_sizes(tokenizer)) as spool:
        for row in rows:
            spool.add(row)
        counts, tokens = spool.write_splits(paths, (0.8, 0.1, 0.1), 7)
    assert sum(tokens.values()) == sum(sizes)


def test_keep_duplicates_when_asked(tmp_path):
    with ExampleSpool(dedupe=False) as spool:
        for row in _examples():
            spool.add(row)
        assert spool.count == 61 and spool.duplicates == 0


def test_a_failure_while_writing_leaves_no_split_file(tmp_path):
    def sizes(examples):
        if any(ex["source"] == "facts" for ex in examples):
            raise RuntimeError("disk full")
        return word_sizes(examples)

    paths = {split: tmp_path / f"{split}.jsonl" for split in SPLITS}
    with ExampleSpool(sizes=sizes) as spool:
        for row in _examples():
            spool.add(row)
        with pytest.raises(RuntimeError):
            spool.write_splits(paths, (0.8, 0.1, 0.1), 0, [_example("facts", "q", "a", source="facts")])
    assert list(tmp_path.iterdir()) == []


def test_duplicates_are_the_same_prompt_and_reply_in_any_conversation():
    first = _example("alex#1", 'he said "hi","conversation":', "ok")
    again = _example("sam#4", 'he said "hi","conversation":', "ok", source="chat")
    other_reply = _example("sam#4", 'he said "hi","conversation":', "ok!")
    reordered = {"conversation": "kim#0", "source": "chat", "completion": first["completion"],
                 "prompt": first["prompt"]}
    with ExampleSpool() as spool:
        assert [spool.add(first), spool.add(again), spool.add(other_reply), spool.add(reordered)] == \
            [True, False, True, False]
        assert spool.duplicates == 2


def test_a_reply_that_only_looks_like_a_key_is_not_cut_at():
    # the cut for the dedupe key must fall on the real "conversation" key, not on text in a reply
    tricky = _example("alex#1", "x", 'a,"conversation":"alex#1"')
    plain = _example("alex#1", "x", "a")
    with ExampleSpool() as spool:
        assert spool.add(tricky) and spool.add(plain)


def test_word_sizes_count_each_text_s_words():
    rows = [_example("a#0", "two words", "one"), _example("a#1", "", "  spaced\tout \n"),
            _example("a#2", "end|", "|start x")]
    assert word_sizes(rows) == [sum(len(text.split()) for text in example_texts(row)) for row in rows]
    assert word_sizes(rows)[1] == 3 + 3   # "you are maya.", "spaced out DONE"; the empty text adds none

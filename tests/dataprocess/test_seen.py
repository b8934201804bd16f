"""dataprocess.seen + dataprocess.incremental: messages already processed are dropped by content
and time; the same export twice adds nothing, an overlapping one adds only its new part."""
import csv
import json
from datetime import datetime

import numpy as np
import pytest

from core.errors import InputError
from core.workspace import Workspace
from dataprocess.incremental import NothingNew, stage_update
from dataprocess.memory import Memory
from dataprocess.message import Message
from dataprocess.pipeline import run_process
from dataprocess.seen import SEEN_FILE, NewOnly, SeenIndex, fingerprint
from helpers.paths import SAMPLE_CSV, SAMPLE_FACTS


def _rows():
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture(scope="module")
def split_sample(tmp_path_factory):
    """The sample's first 90% of messages as the old export, and its last 10% alone."""
    root = tmp_path_factory.mktemp("seen")
    rows = _rows()
    cut = 1 + int((len(rows) - 1) * 0.9)
    old = _write(root / "old.csv", rows[:cut])
    tail = _write(root / "tail.csv", rows[:1] + rows[cut:])
    return old, tail, len(rows) - cut


@pytest.fixture
def old_workspace(split_sample, tmp_path):
    old, _, _ = split_sample
    ws = Workspace(tmp_path / "ws")
    run_process([old], ws, make_charts=False)
    return ws


def _snapshot(ws):
    return {p.name: p.read_bytes() for p in ws.data_dir.iterdir() if p.is_file()} | {"toml": ws.settings_path.read_bytes()}


def test_fingerprint_is_content_and_time_not_the_file():
    when = datetime(2024, 5, 1, 12, 0, 0)
    a = Message("Alex", "tacos?", when, "Alex", False, source="a.csv")
    assert fingerprint(a) == fingerprint(a._replace(source="other/b.csv", from_me=True))
    assert fingerprint(a) != fingerprint(a._replace(text="tacos"))
    assert fingerprint(a) != fingerprint(a._replace(timestamp=datetime(2024, 5, 1, 12, 0, 1)))
    assert fingerprint(a) != fingerprint(a._replace(chat="Sam"))


def test_index_save_load_and_lookup(tmp_path):
    index = SeenIndex([5, 3, 3, 2**64 - 1])
    assert len(index) == 3
    index.save(tmp_path / SEEN_FILE)
    back = SeenIndex.load(tmp_path / SEEN_FILE)
    assert back.values.tolist() == [3, 5, 2**64 - 1]
    mask = back.contains(np.array([3, 4, 2**64 - 1, 0], dtype=np.uint64))
    assert mask.tolist() == [True, False, True, False]
    assert len(SeenIndex.load(tmp_path / "missing.npy")) == 0  # an older workspace: all new
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="damaged"):
        SeenIndex.load(tmp_path / "bad.npy")


def test_new_only_drops_known_and_repeated_messages():
    when = datetime(2024, 5, 1)
    messages = [Message("A", f"m{i}", when, "A", False) for i in range(10_000)]
    seen = SeenIndex(fingerprint(m) for m in messages[:6000])
    new = NewOnly(seen)
    kept = list(new.watch(messages + messages[9000:]))  # the last 1000 given twice
    assert [m.text for m in kept] == [f"m{i}" for i in range(6000, 10_000)]
    assert (new.new, new.duplicates) == (4000, 7000)
    assert len(new.index(seen)) == 10_000


def test_process_writes_the_index_of_every_message_read(old_workspace):
    report = json.loads((old_workspace.data_dir / "report.json").read_text())
    index = SeenIndex.load(old_workspace.data_dir / SEEN_FILE)
    assert len(index) == report["messages"]["read"] > 3000


def test_the_same_export_twice_adds_nothing(split_sample, old_workspace):
    old, _, _ = split_sample
    before = _snapshot(old_workspace)
    with pytest.raises(NothingNew, match="nothing new"):
        stage_update([old], old_workspace)
    assert _snapshot(old_workspace) == before
    assert not [p for p in old_workspace.data_dir.iterdir() if p.name.startswith(".")]  # no staging left


def test_an_overlapping_export_adds_only_its_new_part(split_sample, old_workspace):
    _, _, new_count = split_sample
    ws = old_workspace
    old_lines = {s: ws.split_path(s).read_text().splitlines() for s in ("train", "valid", "test")}
    before = _snapshot(ws)
    staged = stage_update([SAMPLE_CSV], ws, replay_ratio=1.0)  # the whole history: old + new
    assert _snapshot(ws) == before  # nothing moves in before commit
    assert staged.new_messages == new_count and staged.duplicate_messages == len(_rows()) - 1 - new_count
    assert staged.new_examples["train"] > 0 and staged.replay_examples == staged.new_examples["train"]
    update_train = staged.train_file.read_text().splitlines()
    assert len(update_train) == 2 * staged.new_examples["train"]
    staged.commit()
    after = {s: ws.split_path(s).read_text().splitlines() for s in ("train", "valid", "test")}
    for split in after:  # the old examples kept as they were, the new ones after them
        assert after[split][:len(old_lines[split])] == old_lines[split]
        assert len(after[split]) == len(old_lines[split]) + staged.new_examples[split]
    # the new conversations are named apart: no conversation in two splits
    conversations = {s: {json.loads(line)["conversation"] for line in after[s]} for s in after}
    assert not (conversations["train"] & conversations["test"]) and not (conversations["train"] & conversations["valid"])
    assert any(c.endswith("@u1") for c in conversations["train"])
    report = json.loads((ws.data_dir / "report.json").read_text())
    entry = report["updates"][-1]
    assert (entry["new_messages"], entry["duplicate_messages"]) == (staged.new_messages, staged.duplicate_messages)
    assert entry["new_examples"] == staged.new_examples and report["examples"]["train"] == len(after["train"])
    assert len(SeenIndex.load(ws.data_dir / SEEN_FILE)) == len(_rows()) - 1
    # and once more: nothing new now, whether the whole history or only its tail is given
    with pytest.raises(NothingNew):
        stage_update([SAMPLE_CSV], ws)


def test_an_update_adds_no_second_copy_of_the_knowledge_base_lessons(split_sample, tmp_path):
    old, tail, _ = split_sample
    ws = Workspace(tmp_path / "ws")
    run_process([old], ws, make_charts=False, facts_path=SAMPLE_FACTS)
    lessons = [r for r in map(json.loads, ws.split_path("train").read_text().splitlines())
               if r["source"] in ("declines", "readings")]
    assert lessons   # taught once, by twin process
    voices = Memory.load(ws.data_dir).voices
    assert voices      # how the person writes to some contacts, measured on the whole old history
    staged = stage_update([tail], ws)
    update_train = [json.loads(line) for line in staged.train_file.read_text().splitlines()]
    new = [r for r in update_train if r["conversation"].endswith("@u1")]
    assert new and {r["source"] for r in new} == {"chat"}   # only the new messages' examples are new
    staged.commit()
    after = [json.loads(line) for line in ws.split_path("train").read_text().splitlines()]
    assert sum(r["source"] in ("declines", "readings") for r in after) == len(lessons)
    assert Memory.load(ws.data_dir).voices == voices   # not measured again on the few new messages


def test_only_the_tail_gives_the_same_new_messages(split_sample, old_workspace):
    _, tail, new_count = split_sample
    staged = stage_update([tail], old_workspace)
    try:
        assert (staged.new_messages, staged.duplicate_messages) == (new_count, 0)
    finally:
        staged.discard()
    assert not [p for p in old_workspace.data_dir.iterdir() if p.name.startswith(".")]


def test_fingerprints_keep_their_definition_so_older_indexes_still_match(tmp_path):
    """seen.npy files written before stay valid: 8 bytes of BLAKE2b of chat, sender, ISO time and
    text joined by U+001F, little-endian; the recorder's index holds exactly those."""
    import hashlib

    from dataprocess.seen import Recorder

    when = datetime(2024, 3, 5, 21, 4, 11)
    messages = [Message("Alex", "tacos? \ud83c", when, "Alex", False), Message("me", "ya", when, "Alex", True)]
    expected = [int.from_bytes(hashlib.blake2b(f"{m.chat}\x1f{m.sender}\x1f{when.isoformat()}\x1f{m.text}"
                                               .encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
                for m in messages]
    assert [fingerprint(m) for m in messages] == expected
    recorder = Recorder()
    assert list(recorder.watch(messages)) == messages
    assert recorder.index().values.tolist() == sorted(expected)

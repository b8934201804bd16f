"""The data stage: iMessage CSV reading, cleaning rules, pairing, splits, CLI errors."""
import csv
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers.kept import kept
from helpers.paths import SAMPLE_CSV, SAMPLE_FACTS
from dataprocess import ChatExportError, Message, read_export
from dataprocess.clean import clean_text, squash_repeats, strip_emoji
from dataprocess.conversations import Stats, pairs_from_chat, select_messages
from dataprocess.examples import split_by_conversation
from dataprocess.facts import load_facts
from dataprocess.reactions import is_tapback
from dataprocess.rules import Rules
from twin_cli import main

HEADER = "Timestamp,Readable Time,Sender,Sender ID,Message,Group Chat,Group Chat Name,Sent by Me,To\n"


def write_csv(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(HEADER)
        writer = csv.writer(handle)
        for ts, sender, text, group, to in rows:
            writer.writerow([ts, "", sender, "", text, "Yes" if group else "No", group or "",
                             "Yes" if sender == "Me" else "No", to])
    return path


def test_read_export_sample_yields_messages_with_public_fields():
    messages = list(read_export(SAMPLE_CSV))
    assert len(messages) > 2000
    first = messages[0]
    assert isinstance(first, Message) and isinstance(first.timestamp, datetime)
    kinds = {m.kind for m in messages}
    assert {"text", "reaction", "media"} <= kinds
    assert any(m.from_me for m in messages) and any(not m.from_me for m in messages)
    assert any(m.is_group for m in messages)
    mine = [m for m in messages if m.from_me and not m.is_group]
    assert all(m.chat != "Me" for m in mine)  # own messages are filed under the contact


def test_read_export_reader_details(tmp_path):
    path = write_csv(tmp_path / "m.csv", [
        ("2024-01-01 10:00:00", "Alex", "Hey!", None, ""),
        ("2024-01-01 10:01:00", "Me", "Loved “Hey!”", None, "Alex"),
        ("2024-01-01 10:02:00", "Me", "\ufffc", None, "Alex"),
        ("2024-01-01 10:03:00", "Bo", "hi all", "Climbers", ""),
    ])
    msgs = list(read_export(path))
    assert [m.kind for m in msgs] == ["text", "reaction", "media", "text"]
    assert msgs[0].chat == "Alex" and msgs[1].chat == "Alex" and msgs[1].from_me
    assert msgs[3].chat == "Climbers" and msgs[3].is_group


def test_unknown_and_missing_files_raise_export_error(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("just some text\n")
    with pytest.raises(ChatExportError, match="unrecognised export format"):
        list(read_export(junk))
    with pytest.raises(ChatExportError, match="no such file"):
        list(read_export(tmp_path / "nope.csv"))


def test_malformed_rows_are_skipped_and_counted(tmp_path):
    path = write_csv(tmp_path / "m.csv", [
        ("2024-01-01 10:00:00", "Alex", "hey", None, ""),
        ("not a date", "Alex", "broken", None, ""),
        ("2024-01-01 10:02:00", "Me", "yo", None, "Alex"),
    ])
    skipped = []
    msgs = list(read_export(path, skipped=skipped))
    assert [m.text for m in msgs] == ["hey", "yo"]
    assert len(skipped) == 1 and skipped[0][1] == 3


def test_same_chat_name_in_two_files_of_the_same_name_loses_neither():
    t = datetime(2024, 5, 1, 10, 0)
    msgs = [Message("Alex", "hi", t, "Alex", False, source="a/wa.txt"),
            Message("Alex", "yo", t, "Alex", False, source="b/wa.txt"),
            Message("Alex", "sup", t, "Alex", False, source="c/tg.json")]
    kept = select_messages(msgs, Rules(), Stats())
    assert sorted(kept) == ["Alex (a/wa.txt)", "Alex (b/wa.txt)", "Alex (tg.json)"]
    assert [text for _, _, text in kept["Alex (b/wa.txt)"]] == ["yo"]


@pytest.mark.parametrize("raw, cleaned", [
    ("Check https://example.com/x?y=1 NOW", "check link now"),
    ("oooooooh nice", "oooh nice"),
    ("haha 😂😂 👍🏽 ❤️", "haha"),
    ("Привет, как дела? 🙂", "привет, как дела?"),
    ("שלום מה נשמע", "שלום מה נשמע"),
    ("Tiếng Việt có dấu", "tiếng việt có dấu"),
    ("mail me: maya@example.com or +1 415 555 0134", "mail me: <email> or <phone>"),
    ("see you 2024-05-01 at 7:30", "see you 2024-05-01 at 7:30"),
])
def test_clean_text_rules(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_rules_can_be_turned_off():
    assert clean_text("Hi https://x.com 😂 sooooo", lowercase=False, urls=False, emoji=False, repeats=False) \
        == "Hi https://x.com 😂 sooooo"
    assert squash_repeats("!!!!!!") == "!!!"
    assert strip_emoji("a🇺🇸b") == "ab"


@pytest.mark.parametrize("text, expected", [
    ("Loved “see you at 7”", True), ("Laughed at “lol”", True), ('Alex laughed at "ok"', True),
    ("Emphasized an image", True), ("I loved that movie", False), ("liked it", False),
])
def test_tapbacks(text, expected):
    assert is_tapback(text) is expected


def _msg(minute, from_me, text, chat="Alex", day=1):
    return Message(sender="Me" if from_me else chat, text=text, timestamp=datetime(2024, 1, day, 10, 0) +
                   __import__("datetime").timedelta(minutes=minute), chat=chat, from_me=from_me)


def test_pairs_merge_bursts_and_respect_reply_window():
    msgs = [_msg(0, False, "haha"), _msg(1, False, "that is amazing"), _msg(2, True, "ikr"), _msg(3, True, "lol"),
            _msg(10, False, "tacos?"), _msg(55, True, "late reply")]
    stats = Stats()
    pairs = list(pairs_from_chat("Alex", kept(msgs), Rules(), stats))
    assert len(pairs) == 1
    assert pairs[0].incoming == "haha | that is amazing" and pairs[0].reply == "ikr | lol"
    assert stats["dropped_late_reply"] == 1


def test_context_comes_from_the_same_conversation_only():
    msgs = [_msg(0, False, "hey"), _msg(1, True, "hiii"), _msg(2, False, "tacos?"), _msg(3, True, "bet"),
            _msg(0, False, "new day"), _msg(1, True, "morning")]
    msgs[4:] = [_msg(0, False, "new day", day=3), _msg(1, True, "morning", day=3)]
    pairs = list(pairs_from_chat("Alex", kept(msgs), Rules(), Stats()))
    assert pairs[1].context == [("user", "hey"), ("assistant", "hiii")]
    assert pairs[2].context == [] and pairs[2].conversation != pairs[1].conversation


def test_select_messages_applies_cutoff_groups_and_top_contacts():
    msgs = [Message("A", "old", datetime(2022, 5, 1), "A", False),
            Message("G", "group hi", datetime(2024, 5, 1), "Grp", False, is_group=True)]
    msgs += [Message(c, "hi", datetime(2024, 5, 1), c, False) for c in "ABC" for _ in range(ord("D") - ord(c))]
    stats = Stats()
    kept = select_messages(msgs, Rules(top_contacts=2), stats)
    assert set(kept) == {"A", "B"}
    assert stats["dropped_before_cutoff"] == 1 and stats["dropped_group_chat"] == 1
    assert stats["dropped_not_top_contact"] == 1
    with_groups = select_messages(msgs, Rules(group_chats=True, top_contacts=0), Stats())
    assert with_groups["Grp"][0][2] == "g: group hi"


def test_split_keeps_conversations_whole():
    examples = [{"conversation": f"c{i % 30}", "i": i} for i in range(300)]
    splits = split_by_conversation(examples, (0.8, 0.1, 0.1), seed=1)
    owners = {}
    for name, rows in splits.items():
        for row in rows:
            assert owners.setdefault(row["conversation"], name) == name
    assert all(splits[name] for name in ("train", "valid", "test"))
    assert split_by_conversation(examples, (0.8, 0.1, 0.1), seed=1) == splits


def test_facts_become_questions(tmp_path):
    facts = load_facts(SAMPLE_FACTS)
    assert facts.name == "maya"
    assert any(qa.question == "where are you from?" for qa in facts.qa)
    bad = tmp_path / "facts.toml"
    bad.write_text("[[qa]]\nquestions = 'not a list'\nanswer = 'x'\n")
    with pytest.raises(ChatExportError, match="questions"):
        load_facts(bad)


def test_sample_workspace_examples(sample_workspace):
    rows = {s: [json.loads(l) for l in open(sample_workspace / "data" / f"{s}.jsonl")] for s in ("train", "valid", "test")}
    assert len(rows["train"]) > 300 and rows["valid"] and rows["test"]
    for row in rows["train"]:
        assert row["prompt"][0]["role"] == "system" and row["prompt"][-1]["role"] == "user"
        reply = row["completion"][0]["content"]
        assert reply.endswith(" DONE") and reply[:-len(" DONE")] == reply[:-len(" DONE")].lower()
        assert "http" not in reply
    facts = [r for r in rows["train"] if r["source"] == "facts"]
    assert facts and not any(r["source"] == "facts" for r in rows["test"])
    convs = [{r["conversation"] for r in rows[s]} for s in ("train", "valid", "test")]
    assert not (convs[0] & convs[1]) and not (convs[0] & convs[2]) and not (convs[1] & convs[2])
    report = json.loads((sample_workspace / "data" / "report.json").read_text())
    assert report["messages"]["dropped_before_cutoff"] > 0 and report["messages"]["dropped_reaction"] > 0


def test_cli_process_bad_input_is_one_line_exit_2(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage")
    result = CliRunner().invoke(main, ["process", str(junk), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "unrecognised export format" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ws" / "data").exists()


def test_cli_process_no_pairs_writes_nothing(tmp_path):
    path = write_csv(tmp_path / "m.csv", [("2024-01-01 10:00:00", "Alex", "hey", None, "")])
    result = CliRunner().invoke(main, ["process", str(path), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "no reply pairs" in result.output
    assert not (tmp_path / "ws" / "data").exists()


def test_cli_process_sample(tmp_path):
    result = CliRunner().invoke(main, ["process", str(SAMPLE_CSV), "--facts", str(SAMPLE_FACTS),
                                       "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    assert "persona: maya" in result.output
    assert (tmp_path / "ws" / "twin.toml").read_text().count("[persona]") == 1


def test_imessage_csv_epoch_and_numeric_flags(tmp_path):
    """The other value style of the same export: Unix-seconds timestamps, 1/0 flags, newest first."""
    path = tmp_path / "m.csv"
    ts = datetime(2024, 3, 4, 21, 15, 2).timestamp()
    path.write_text(HEADER + f'"{ts + 60}","2024-03-04 21:16:02","Me","2","yo","0","","1","+15105550101"\n'
                    f'"{ts}","2024-03-04 21:15:02","+15105550101","1","hey","0","","0",""\n'
                    f'"{ts}","2024-03-04 21:15:02","+15105550102","3","hi all","1","Crew","0",""\n',
                    encoding="utf-8")
    msgs = list(read_export(path))
    assert msgs[1].timestamp == datetime(2024, 3, 4, 21, 15, 2)
    assert msgs[0].from_me and msgs[0].chat == "+15105550101" and msgs[1].chat == "+15105550101"
    assert msgs[2].is_group and msgs[2].chat == "Crew"
    pairs = list(pairs_from_chat("x", kept([m for m in msgs if not m.is_group]), Rules(), Stats()))
    assert [(p.incoming, p.reply) for p in pairs] == [("hey", "yo")]


def test_my_messages_hours_apart_are_separate_turns():
    msgs = [_msg(0, False, "hey"), _msg(1, True, "hiii"), _msg(300, True, "also pickle says hi")]
    pairs = list(pairs_from_chat("Alex", kept(msgs), Rules(session_gap_hours=12), Stats()))
    assert [(p.incoming, p.reply) for p in pairs] == [("hey", "hiii")]


def test_report_counts_and_charts(sample_workspace):
    report = json.loads((sample_workspace / "data" / "report.json").read_text())
    read = report["read"]
    assert sum(read["by_source"].values()) == report["messages"]["read"]
    assert sum(read["by_contact"].values()) == report["messages"]["read"]
    assert sum(report["activity"]["by_hour"].values()) == report["messages"]["read"]
    assert report["examples"]["train"] == sum(1 for _ in open(sample_workspace / "data" / "train.jsonl"))
    assert all(report["tokens"][s] > 0 for s in ("train", "valid", "test"))
    hist = report["reply_chars"]["histogram"]
    assert sum(hist.values()) == sum(1 for split in ("train", "valid", "test")   # all of my replies
                                     for line in open(sample_workspace / "data" / f"{split}.jsonl")
                                     if json.loads(line)["source"] == "chat")
    assert report["top_words"] and report["top_bigrams"]
    for name in ("activity.png", "reply_lengths.png", "top_words.png"):
        assert (sample_workspace / "data" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_top_terms_keep_non_latin_words():
    from dataprocess.report import top_terms

    words, pairs = top_terms(["привет как дела", "привет lol", "שלום lol"])
    assert ("привет", 2) in words and ("lol", 2) in words and ("שלום", 1) in words
    assert ("привет как", 1) in pairs


def test_reply_stats_in_batches_count_what_each_reply_holds():
    import random
    import re
    from collections import Counter

    from dataprocess.report import ReplyStats

    rng = random.Random(3)
    vocabulary = ["ok", "Yeah", "don't", "привет", "שלום", "lol", "x2", "🙂", "|", "a-b", "İz"]
    replies = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 6))) for _ in range(3000)]
    replies += ["two\nlines here", "end\n", "\nstart ok"]
    stats = ReplyStats()
    stats._BATCH = 500          # several batches, the last one partial
    for reply in replies:
        stats.add(reply)
    word = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
    words, pairs = Counter(), Counter()
    for reply in replies:
        for line in reply.lower().split("\n"):
            tokens = word.findall(line)
            words.update(tokens)
            pairs.update(zip(tokens, tokens[1:]))
    assert dict(stats.words) == dict(words) and dict(stats.bigrams) == dict(pairs)
    assert ("lines", "here") in stats.bigrams and ("two", "lines") not in stats.bigrams
    assert stats.lengths == sorted(len(r) for r in replies)


@pytest.mark.parametrize("lengths", [[], [7], [3, 9], [5, 5, 400, 12, 12, 12], list(range(0, 20_000, 7)),
                                     [1, 2, 3, 4] * 250 + [10_000, 15_000]])
def test_reply_chars_from_the_length_counts_are_the_statistics_of_every_reply(lengths):
    """The report's reply figures, made from how many replies have each length, are those of
    the statistics module and a reply-by-reply histogram over the same replies."""
    import statistics
    from collections import Counter

    from dataprocess.report import REPLY_LENGTH_BINS, reply_chars

    figures = reply_chars(Counter(lengths))
    if not lengths:
        assert figures["mean"] == figures["median"] == figures["max"] == 0
        assert set(figures["histogram"].values()) == {0}
        return
    assert figures["mean"] == round(statistics.mean(lengths), 1)
    assert figures["median"] == statistics.median(lengths) and figures["max"] == max(lengths)
    bins = REPLY_LENGTH_BINS
    by_bin = [sum(1 for n in lengths if low <= n < high) for low, high in zip(bins, bins[1:])]
    by_bin[-1] += sum(1 for n in lengths if n >= bins[-1])   # the last bin ("320+") is open
    assert list(figures["histogram"].values()) == by_bin and sum(by_bin) == len(lengths)


def test_tally_counts_every_message_across_batches():
    from dataprocess.report import Tally

    t = datetime(2024, 5, 1, 10, 0)
    msgs = [Message("Alex", "hi", t + timedelta(hours=7 * i), "Alex" if i % 3 else "Sam", False,
                    kind="text" if i % 4 else "media", source="wa.txt") for i in range(1000)]
    tally = Tally()
    tally._BATCH = 64           # many batches, the last one partial
    assert sum(1 for _ in tally.watch(msgs)) == 1000
    assert tally.by_contact == Counter(m.chat for m in msgs)
    assert tally.by_kind == Counter(m.kind for m in msgs)
    assert tally.by_hour == Counter(m.timestamp.hour for m in msgs)
    assert sum(tally.by_month.values()) == 1000 and tally.by_source == {"wa.txt": 1000}


def test_month_chart_is_labelled_by_year_over_a_history_of_years():
    from dataprocess.report import MAX_MONTH_LABELS, _month_ticks

    few = ["2023-11", "2023-12", "2024-01"]
    assert _month_ticks(few) == ([0, 1, 2], few)
    many = [f"{y}-{m:02d}" for y in range(2010, 2025) for m in range(1, 13) if (y, m) != (2012, 1)][5:]
    assert len(many) > MAX_MONTH_LABELS
    positions, labels = _month_ticks(many)
    assert labels == [str(y) for y in range(2010, 2025)]
    assert [many[p][:4] for p in positions] == labels and many[positions[2]] == "2012-02"  # 2012 starts in Feb


def test_clean_text_fast_path_equals_every_rule_applied():
    import random

    from dataprocess.clean import apply_rules

    rng = random.Random(7)
    alphabet = "aAbBwWoO  .@/:1234567890!?,'-\t\n\u00a0é😀"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(20000)]
    texts += ["www.x.com", "WwW.site.org ok", "soooo good", "a  b", " hi ", "call 555 123 4567", "a@b.co", "aAaA", "NoOoO", "ok 😀 yes", "😀", "aa😀aa", "İstanbul ÉTÉ", "#\u20e3 ok", "привет 😂"]
    for flags in ({}, {"lowercase": False}, {"repeats": False, "urls": False}):
        for text in texts:
            assert clean_text(text, **flags) == apply_rules(text, **flags), (text, flags)


def test_fast_path_emoji_bound_is_below_every_emoji_range():
    from dataprocess.clean import _FIRST_EMOJI, EMOJI_RE

    body = EMOJI_RE.pattern.strip("[]+")
    assert min(c for c in body if c != "-") == _FIRST_EMOJI


def test_pruned_counter_keeps_the_top_terms_exact_in_bounded_memory():
    from dataprocess.report import PrunedCounter

    counter = PrunedCounter(capacity=50)
    for i in range(5000):   # two frequent terms among thousands seen once
        counter.add_all(["yeah", f"rare{i}"] + (["lol"] if i % 2 else []))
        assert len(counter) <= 51
    assert counter.most_common(2) == [("yeah", 5000), ("lol", 2500)]
    assert counter.floor > 0   # it did prune


def test_same_chat_name_in_two_files_stays_two_conversations():
    t = datetime(2024, 5, 1, 10, 0)
    msgs = [Message("Alex", "hi", t, "Alex", False, source="a/wa.txt"),
            Message("Alex", "yo", t, "Alex", False, source="b/tg.json"),
            Message("Alex", "sup", t, "Alex", False, source="b/tg.json")]
    stats = Stats()
    kept = select_messages(msgs, Rules(), stats)
    assert sorted(kept) == ["Alex (tg.json)", "Alex (wa.txt)"]
    assert stats["kept_chats"] == 1 and stats["kept_messages"] == 3


@pytest.mark.parametrize("raw, cleaned", [
    ("my card is 4111 1111 1111 1111 ok", "my card is <card> ok"),
    ("iban DE89 3704 0044 0532 0130 00 thx", "iban <iban> thx"),
    ("GB82WEST12345698765432", "<iban>"),
    ("GB00WEST12345698765432 is not valid", "gb00west12345698765432 is not valid"),
    ("account number: 12345678 pls", "account number: <account> pls"),
    ("im at 2145 Telegraph Ave, Oakland", "im at <address>, oakland"),
    ("Hauptstraße 12 in berlin", "<address> in berlin"),
    ("i walked 5 miles down the road", "i walked 5 miles down the road"),
    ("i have 3 dogs and 2 cats", "i have 3 dogs and 2 cats"),
])
def test_personal_data_scrubbing(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_anonymize_contacts_and_message_cap():
    t = datetime(2024, 5, 1, 10, 0)
    msgs = [Message("Alex Kim", "Alex here, Kim family says hi", t, "Alex Kim", False),
            Message("Me", "hey alex", t, "Alex Kim", True),
            Message("Alex Kim", "x" * 2000, t, "Alex Kim", False)]
    stats = Stats()
    kept = select_messages(msgs, Rules(anonymize_contacts=True), stats)
    texts = [text for _, _, text in kept["Alex Kim"]]
    assert texts == ["<contact> here, kim family says hi", "hey alex"]  # only the contact's own messages
    assert stats["dropped_too_long"] == 1


def test_cli_split_flag(tmp_path):
    bad = CliRunner().invoke(main, ["process", str(SAMPLE_CSV), "-w", str(tmp_path / "w"), "--split", "80/20"])
    assert bad.exit_code == 2 and "80/10/10" in bad.output
    ok = CliRunner().invoke(main, ["process", str(SAMPLE_CSV), "-w", str(tmp_path / "w"), "--split", "90/5/5",
                                   "--anonymize-contacts"])
    assert ok.exit_code == 0, ok.output
    report = json.loads((tmp_path / "w" / "data" / "report.json").read_text())
    assert report["rules"]["split"] == [90.0, 5.0, 5.0] and report["rules"]["anonymize_contacts"] is True


def test_the_report_counts_tokens_with_the_workspaces_own_base(tmp_path, own_twin_cache, tiny_llama):
    """The trained adapter's tokenizer first, else the recorded base's, else the embedded
    default's copy: never whichever cached model sorts last."""
    import shutil

    from core.workspace import Workspace
    from dataprocess.report import base_tokenizer_file

    ws = Workspace(tmp_path / "ws")
    assert base_tokenizer_file(ws) is None  # nothing trained, the default not converted here
    other = own_twin_cache / "models" / "zzz-other-model"
    shutil.copytree(tiny_llama, other)  # sorts last in the cache, but is nobody's base
    assert base_tokenizer_file(ws) is None
    ws.adapter_dir.mkdir(parents=True)
    shutil.copy(tiny_llama / "tokenizer.json", ws.adapter_dir / "tokenizer.json")
    assert base_tokenizer_file(ws) == ws.adapter_dir / "tokenizer.json"

"""The bundled sample data (samples/) is what the generator writes, and has what the demo needs."""

from __future__ import annotations

import csv
import importlib.util
import re
import tomllib
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CSV_PATH = SAMPLES / "imessage" / "messages.csv"
FACTS_PATH = SAMPLES / "facts.toml"
HEADER = ["Timestamp", "Readable Time", "Sender", "Sender ID", "Message", "Group Chat", "Group Chat Name", "Sent by Me", "To"]
TAPBACK = re.compile(r"^(Loved|Liked|Laughed at|Emphasized|Disliked|Questioned) (\u201c.*\u201d|an image)$", re.S)
URL = re.compile(r"https?://\S+")
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
STRETCHED = re.compile(r"(\w)\1{3,}")


def load_generator():
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLES / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with CSV_PATH.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == HEADER
        return list(reader)


def test_generator_is_deterministic_and_matches_committed_files(tmp_path):
    gen = load_generator()
    gen.generate(tmp_path / "a")
    gen.generate(tmp_path / "b")
    for rel in ("imessage/messages.csv", "facts.toml"):
        first = (tmp_path / "a" / rel).read_bytes()
        assert first == (tmp_path / "b" / rel).read_bytes(), rel
        assert first == (SAMPLES / rel).read_bytes(), f"{rel} is stale: run .venv/bin/python samples/make_sample.py"


def test_csv_header_and_size(rows):
    first_line = CSV_PATH.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first_line == ",".join(HEADER)
    assert len(rows) >= 2000
    assert CSV_PATH.stat().st_size < 1_000_000


def test_columns_are_consistent(rows):
    for r in rows:
        assert r["Group Chat"] in ("Yes", "No")
        assert r["Sent by Me"] in ("Yes", "No")
        datetime.strptime(r["Timestamp"], "%Y-%m-%d %H:%M:%S")
        assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4} at \d{1,2}:\d{2}:\d{2} [AP]M", r["Readable Time"])
        when = datetime.strptime(r["Readable Time"], "%b %d, %Y at %I:%M:%S %p")
        assert when == datetime.strptime(r["Timestamp"], "%Y-%m-%d %H:%M:%S")
        if r["Sent by Me"] == "Yes":
            assert r["Sender"] == "Me"
            assert r["To"]
        else:
            assert r["Sender"] != "Me" and r["Sender ID"]
        if r["Group Chat"] == "Yes":
            assert r["Group Chat Name"] and r["To"] == r["Group Chat Name"]
        else:
            assert r["Group Chat Name"] == ""
    stamps = [r["Timestamp"] for r in rows]
    assert stamps == sorted(stamps)


def test_contacts_and_time_span(rows):
    contacts = Counter(r["Sender"] for r in rows if r["Sent by Me"] == "No")
    assert len(contacts) >= 20
    counts = [n for _name, n in contacts.most_common()]
    assert counts[0] >= 5 * counts[-1]  # a few contacts dominate, so "top N" matters
    times = [datetime.fromisoformat(r["Timestamp"]) for r in rows]
    assert (max(times) - min(times)).days >= 730
    assert any(t < datetime(2023, 1, 1) for t in times)  # something for the date cut-off to drop
    assert max(times) >= datetime(2024, 12, 1)


def test_owner_share(rows):
    mine = sum(r["Sent by Me"] == "Yes" for r in rows)
    assert 0.45 <= mine / len(rows) <= 0.55


def test_content_features(rows):
    texts = [r["Message"] for r in rows]
    groups = {r["Group Chat Name"] for r in rows if r["Group Chat"] == "Yes"}
    assert len(groups) >= 2
    for g in groups:
        assert len({r["Sender"] for r in rows if r["Group Chat Name"] == g and r["Sent by Me"] == "No"}) >= 3
    taps = Counter(TAPBACK.match(t).group(1) for t in texts if TAPBACK.match(t))
    assert set(taps) == {"Loved", "Liked", "Laughed at", "Emphasized", "Disliked", "Questioned"}
    assert any(TAPBACK.match(r["Message"]) for r in rows if r["Sent by Me"] == "Yes")
    assert any(TAPBACK.match(r["Message"]) for r in rows if r["Sent by Me"] == "No")
    assert any(t.endswith(" an image") and TAPBACK.match(t) for t in texts)
    assert sum(bool(URL.search(t)) for t in texts) >= 20
    assert sum(bool(EMOJI.search(t)) for t in texts) >= 20
    assert sum(bool(STRETCHED.search(t)) for t in texts) >= 20
    assert any("\ufffc" in t for t in texts)
    assert any(t == "" for t in texts)
    assert any("\n" in t for t in texts)
    assert any(re.search("[\u0400-\u04ff]", t) for t in texts)  # Cyrillic
    assert any(re.search("[\u0590-\u05ff]", t) for t in texts)  # Hebrew


def one_on_one_turns(rows):
    """(chat, from_me, first time, last time) for each run of same-sender 1:1 messages."""
    turns = []
    last_in_chat: dict[str, int] = {}
    for r in rows:
        if r["Group Chat"] == "Yes":
            continue
        me = r["Sent by Me"] == "Yes"
        chat = r["To"] if me else r["Sender"]
        when = datetime.fromisoformat(r["Timestamp"])
        i = last_in_chat.get(chat)
        if i is not None and turns[i][1] == me:
            turns[i][3] = when
        else:
            turns.append([chat, me, when, when])
            last_in_chat[chat] = len(turns) - 1
    return turns


def test_reply_timing_mix(rows):
    turns = one_on_one_turns(rows)
    by_chat: dict[str, list] = {}
    for t in turns:
        by_chat.setdefault(t[0], []).append(t)
    quick = late = bursts = 0
    for chat_turns in by_chat.values():
        for a, b in zip(chat_turns, chat_turns[1:]):
            if not a[1] and b[1]:
                gap = (b[2] - a[3]).total_seconds()
                quick += gap <= 30 * 60
                late += gap > 30 * 60
        bursts += sum(1 for t in chat_turns if t[1] and t[3] > t[2])
    assert quick >= 300  # plenty of training pairs
    assert late >= 10  # and some the 30-minute rule drops
    assert bursts >= 200  # the owner texts in bursts


# To her mom and to Rosa (her boss) Maya writes whole sentences with capitals; to everyone else
# lowercase, short, no final period: the sample's voice per contact.
FORMAL = ("Mom", "Rosa Delgado")


def test_owner_style_is_consistent(rows):
    own = [r for r in rows if r["Sent by Me"] == "Yes" and not TAPBACK.match(r["Message"])]
    casual = [r["Message"] for r in own if r["To"] not in FORMAL]
    for text in casual:
        bare = URL.sub("", text)
        assert bare == bare.lower(), text
        assert not text.rstrip().endswith("."), text
        assert len(text.split()) <= 12, text
    joined = "\n".join(casual)
    for habit in ("lowkey", "omg", "ya", "bet", "lmao", "pickle says hi", "bartaco?", "fr", "ngl"):
        assert habit in joined, habit


def test_the_owner_writes_differently_to_her_mom_and_her_boss(rows):
    own = [r for r in rows if r["Sent by Me"] == "Yes" and not TAPBACK.match(r["Message"]) and r["Group Chat"] == "No"]
    def figures(texts):
        return sum(map(len, texts)) / len(texts), sum(t != t.lower() for t in texts) / len(texts)
    casual = figures([r["Message"] for r in own if r["To"] not in FORMAL])
    for contact in FORMAL:
        length, capitals = figures([r["Message"] for r in own if r["To"] == contact])
        assert length > 1.25 * casual[0] and capitals > 0.15 > 0.05 > casual[1], (contact, length, capitals, casual)


def test_greetings_get_persona_replies(rows):
    greetings = {"hello, how are you?", "hey how are you?", "hi! how's it going?"}
    hits = [i for i, r in enumerate(rows)
            if r["Sent by Me"] == "No" and r["Group Chat"] == "No" and r["Message"].lower() in greetings]
    assert len(hits) >= 20
    answered = 0
    for i in hits:
        chat = rows[i]["Sender"]
        following = (r for r in rows[i + 1:] if r["Group Chat"] == "No" and chat in (r["Sender"], r["To"]))
        reply = next(following, None)
        answered += reply is not None and reply["Sent by Me"] == "Yes"
    assert answered >= 0.8 * len(hits)


def test_facts_file():
    facts = tomllib.loads(FACTS_PATH.read_text(encoding="utf-8"))
    me = facts["me"]
    assert me["name"] == "maya"
    for key in ("hometown", "lives", "job", "age"):
        assert isinstance(me[key], str) and me[key]
    assert all(isinstance(v, str) for v in me.values())
    assert len(facts["qa"]) >= 3
    for qa in facts["qa"]:
        assert qa["questions"] and all(isinstance(q, str) and q for q in qa["questions"])
        assert qa["answer"] == qa["answer"].lower()

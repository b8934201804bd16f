"""POST /feedback rates a reply by the id the server gave it; the text comes from the server's
record, never from the client -> SQLite (WAL, many threads) -> good_replies(): cleaned by the
data rules like an export, capped, opt-in in `twin process`, counted in the data report."""
import json
import sqlite3
import threading

from click.testing import CliRunner

from helpers.paths import SAMPLE_CSV
from core.settings import Rules
from dataprocess.feedback import FeedbackStore, good_replies
from dataprocess.template import prompt_messages
from server.app import create_app
from helpers.server import ScriptedBackend
from twin_cli import main


def client_for(db, backend=None, **kwargs):
    return create_app(backend or ScriptedBackend(["omg hiii | u? DONE"]), persona="maya",
                      feedback_db=db, **kwargs).test_client()


def test_rated_replies_are_the_servers_own_record(tmp_path):
    db = tmp_path / "ws" / "feedback.sqlite"
    client = client_for(db)
    first = client.post("/generate", json={"text": "Hey"}).get_json()
    up = client.post("/feedback", json={"id": first["id"], "rating": 1})
    assert up.status_code == 201 and up.get_json() == {"id": first["id"], "rating": 1, "stored": True}
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    second = client.post("/generate", json={"text": "TACOS?", "history": history}).get_json()
    client.post("/feedback", json={"id": second["id"], "rating": "up"})
    third = client.post("/generate", json={"text": "k"}).get_json()
    client.post("/feedback", json={"id": third["id"], "rating": 1})
    client.post("/feedback", json={"id": third["id"], "rating": "down"})  # changed its mind: the last rating counts
    records = good_replies(db, persona="maya")
    assert records == [
        {"prompt": prompt_messages("maya", "hey"),
         "completion": [{"role": "assistant", "content": "omg hiii | u? DONE"}],
         "conversation": f"feedback#{first['id']}", "source": "feedback"},
        {"prompt": prompt_messages("maya", "tacos?", [("user", "hi"), ("assistant", "yo")]),
         "completion": [{"role": "assistant", "content": "omg hiii | u? DONE"}],
         "conversation": f"feedback#{second['id']}", "source": "feedback"},
    ]
    assert good_replies(tmp_path / "absent.sqlite") == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_words_cannot_be_put_in_the_twins_mouth(tmp_path):
    """The attack of issue 11: a client submits its own 'reply' text to be learned."""
    db = tmp_path / "f.sqlite"
    client = client_for(db)
    forged = client.post("/feedback", json={"prompt": "thoughts on bob?", "reply": "bob is a thief and a liar",
                                            "rating": 1})
    assert forged.status_code == 400 and "own record" in forged.get_json()["error"]
    guessed = client.post("/feedback", json={"id": "reply-" + "0" * 24, "rating": 1})
    assert guessed.status_code == 404
    real = client.post("/generate", json={"text": "thoughts on bob?"}).get_json()
    smuggled = client.post("/feedback", json={"id": real["id"], "rating": 1, "reply": "bob is a thief"})
    assert smuggled.status_code == 400
    # Another client (here: another address, no keys) cannot rate someone else's reply either.
    other = client.post("/feedback", json={"id": real["id"], "rating": 1}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 404
    assert "thief" not in json.dumps(good_replies(db)) and good_replies(db) == []


def test_streamed_and_openai_replies_carry_ids_that_can_be_rated(tmp_path):
    db = tmp_path / "f.sqlite"
    client = client_for(db)
    plain = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "yo"}]}).get_json()
    events = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "sup"}],
                                                       "stream": True}).get_data(as_text=True)
    chunks = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: {")]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and plain["id"] not in ids
    for rid in (plain["id"], *ids):
        assert client.post("/feedback", json={"id": rid, "rating": 1}).status_code == 201
    assert [r["prompt"][-1]["content"] for r in good_replies(db)] == ["yo", "sup"]


def test_rated_rows_are_cleaned_by_the_rules_and_capped(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    store.add("r1", [("user", "Call me at 415-555-0134 🙂"), ("assistant", "OK")], "SEE https://example.com/x?id=1 NOW",
              "ok | mail me at maya@example.com DONE", 1)
    store.add("r2", [], "hi", "😀😀", 1)  # nothing left after cleaning: dropped
    for n in range(5):
        store.add(f"s{n}", [], f"q{n}", f"a{n}", 1)
    records = good_replies(store.path, Rules(), "maya", limit=4)
    assert [r["conversation"] for r in records] == ["feedback#s1", "feedback#s2", "feedback#s3", "feedback#s4"]
    first = good_replies(store.path, Rules(), "maya")[0]
    assert first["prompt"] == prompt_messages("maya", "see link now", [("user", "call me at <phone>"),
                                                                        ("assistant", "ok")])
    assert first["completion"][0]["content"] == "ok | mail me at <email> DONE"
    keep_case = good_replies(store.path, Rules(lowercase=False, scrub_personal_data=False), "maya")[0]
    assert keep_case["prompt"][-1]["content"] == "SEE link NOW"


def test_feedback_off_without_a_database():
    reply = create_app(ScriptedBackend(), persona="maya").test_client().post(
        "/feedback", json={"id": "reply-1", "rating": 1})
    assert reply.status_code == 404 and "not enabled" in reply.get_json()["error"]


def test_feedback_store_takes_concurrent_writes(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    errors = []

    def write(n):
        try:
            for i in range(20):
                store.add(f"r{n}-{i}", [], f"t{n}-{i}", f"r{n}-{i}", 1)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and store.count() == 120 and len(good_replies(store.path, limit=1000)) == 120


def test_process_folds_rated_replies_in_only_when_asked_and_counts_them(tmp_path):
    ws = tmp_path / "ws"
    store = FeedbackStore(ws / "feedback.sqlite")
    store.add("r1", [], "Tacos tonight?", "bet | bartaco?", 1)
    store.add("r2", [], "u up?", "no", -1)
    plain = CliRunner().invoke(main, ["process", str(SAMPLE_CSV), "-w", str(ws)])
    assert plain.exit_code == 0, plain.output
    assert not any('"feedback"' in line for line in open(ws / "data" / "train.jsonl"))
    asked = CliRunner().invoke(main, ["process", str(SAMPLE_CSV), "-w", str(ws), "--feedback"])
    assert asked.exit_code == 0, asked.output
    train = [json.loads(line) for line in open(ws / "data" / "train.jsonl")]
    rated = [r for r in train if r["source"] == "feedback"]
    assert len(rated) == 1 and rated[0]["prompt"][-1]["content"] == "tacos tonight?"
    assert rated[0]["completion"][0]["content"] == "bet | bartaco? DONE"
    report = json.loads((ws / "data" / "report.json").read_text())
    assert report["messages"]["feedback_examples"] == 1

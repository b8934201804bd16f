"""POST /feedback -> SQLite (WAL, many threads) -> good_replies() training records."""
import sqlite3
import threading

from dataprocess.template import prompt_messages
from server.app import create_app
from server.feedback import FeedbackStore, good_replies
from test_server_support import ScriptedBackend


def client_for(db, backend=None, **kwargs):
    return create_app(backend or ScriptedBackend(["omg hiii | u? DONE"]), persona="maya",
                      feedback_db=db, **kwargs).test_client()


def test_feedback_is_stored_and_good_replies_are_training_records(tmp_path):
    db = tmp_path / "ws" / "feedback.sqlite"
    client = client_for(db)
    up = client.post("/feedback", json={"prompt": "Hey", "reply": "omg hiii | u?", "rating": 1})
    assert up.status_code == 201 and up.get_json()["stored"] is True
    client.post("/feedback", json={"prompt": "tacos?", "reply": "no", "rating": "down"})
    client.post("/feedback", json={"prompt": "tacos?", "reply": "bet", "rating": "up",
                                   "history": [{"role": "user", "content": "hi"},
                                               {"role": "assistant", "content": "yo"}]})
    # Rated up once and down twice: not good on balance.
    for rating in (1, -1, -1):
        client.post("/feedback", json={"prompt": "k", "reply": "meh", "rating": rating})
    records = good_replies(db)
    assert records == [
        {"prompt": prompt_messages("maya", "hey"),
         "completion": [{"role": "assistant", "content": "omg hiii | u? DONE"}],
         "conversation": f"feedback#{up.get_json()['id']}", "source": "feedback"},
        {"prompt": prompt_messages("maya", "tacos?", [("user", "hi"), ("assistant", "yo")]),
         "completion": [{"role": "assistant", "content": "bet DONE"}],
         "conversation": records[1]["conversation"], "source": "feedback"},
    ]
    assert good_replies(tmp_path / "absent.sqlite") == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_feedback_from_openai_style_messages_and_from_a_conversation(tmp_path):
    db = tmp_path / "f.sqlite"
    client = client_for(db)
    client.post("/feedback", json={"messages": [{"role": "system", "content": "ignored"},
                                                {"role": "user", "content": "yo"}], "reply": "sup", "rating": 1})
    # The web page's way: the server kept the conversation, the rating names it.
    client.post("/generate", json={"text": "hey", "conversation_id": "w1"})
    client.post("/generate", json={"text": "tacos?", "conversation_id": "w1"})
    client.post("/feedback", json={"conversation_id": "w1", "prompt": "tacos?", "reply": "omg hiii | u?",
                                   "rating": "up"})
    records = good_replies(db)
    assert records[0]["prompt"] == prompt_messages("maya", "yo")
    assert records[1]["prompt"] == prompt_messages("maya", "tacos?", [("user", "hey"), ("assistant", "omg hiii | u?")])


def test_feedback_off_without_a_database():
    reply = create_app(ScriptedBackend(), persona="maya").test_client().post(
        "/feedback", json={"prompt": "hi", "reply": "yo", "rating": 1})
    assert reply.status_code == 404 and "not enabled" in reply.get_json()["error"]


def test_feedback_store_takes_concurrent_writes(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    errors = []

    def write(n):
        try:
            for i in range(20):
                store.add(prompt_messages("maya", f"t{n}-{i}"), f"r{n}-{i}", 1)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and store.count() == 120 and len(good_replies(store.path)) == 120

"""The shared prompt format: message building, terminator and splitting."""
import pytest

from core.terminator import DONE, MESSAGE_SEPARATOR, completion_text, split_messages, strip_terminator
from dataprocess.template import prompt_messages, system_prompt


def test_prompt_messages_orders_system_history_and_incoming():
    msgs = prompt_messages("maya", "tacos?", [("user", "hey"), ("assistant", "hiii")])
    assert msgs[0] == {"role": "system", "content": system_prompt("maya")}
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user"]
    assert msgs[-1]["content"] == "tacos?"


def test_prompt_messages_merges_same_role_and_drops_leading_assistant():
    msgs = prompt_messages("maya", "you there?", [("assistant", "lol"), ("user", "hey"), ("user", "yo")])
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[1]["content"] == "hey" + MESSAGE_SEPARATOR + "yo" + MESSAGE_SEPARATOR + "you there?"


def test_prompt_messages_rejects_unknown_role():
    with pytest.raises(ValueError):
        prompt_messages("maya", "hi", [("system", "x")])


def test_completion_ends_with_done_and_strip_removes_it():
    target = completion_text("yeah | bartaco?")
    assert target.endswith(" " + DONE)
    assert strip_terminator(target) == "yeah | bartaco?"
    assert strip_terminator("ok DONE extra junk DONE more") == "ok"
    # 'done' in lowercased text is a word, not the terminator
    assert strip_terminator("im done lol") == "im done lol"


def test_split_messages():
    assert split_messages("yeah | bartaco?") == ["yeah", "bartaco?"]
    assert split_messages("one|two | ") == ["one", "two"]
    assert split_messages("") == []


def _reference_prompt(persona, incoming, history):
    """prompt_messages as first written: merge same roles, then drop leading assistant turns."""
    turns = []
    for role, text in list(history) + [("user", incoming)]:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += MESSAGE_SEPARATOR + text
        else:
            turns.append({"role": role, "content": text})
    while turns and turns[0]["role"] == "assistant":
        turns.pop(0)
    return [{"role": "system", "content": system_prompt(persona)}] + turns


def test_prompt_messages_equal_the_plain_merge_on_random_histories():
    import random

    rng = random.Random(5)
    for _ in range(3000):
        history = [(rng.choice(["user", "assistant"]), rng.choice(["a", "b c", ""])) for _ in range(rng.randint(0, 6))]
        assert prompt_messages("maya", "hi", history) == _reference_prompt("maya", "hi", history), history


def test_leading_replies_are_dropped_before_an_unknown_role_is_caught():
    with pytest.raises(ValueError):
        prompt_messages("maya", "hi", [("assistant", "x"), ("bot", "y")])

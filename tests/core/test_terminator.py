"""core.terminator: the one place DONE is found, cut and the separator is applied."""
import random

import pytest

from core.terminator import (DONE, MESSAGE_SEPARATOR, TERMINATOR, completion_text, find_terminator, is_terminated,
                             join_messages, split_messages, strip_terminator)


@pytest.mark.parametrize("text, cut", [
    ("yeah | bartaco? DONE", "yeah | bartaco?"),
    ("yeah DONE<|im_end|>", "yeah"),
    ("yeah DONE and then junk DONE", "yeah"),
    ("DONE", ""),
    ("no terminator here", "no terminator here"),
    ("we ABANDONED it", "we ABANDONED it"),     # inside a word: not the terminator
    ("DONEZO with this", "DONEZO with this"),
    ("  spaced out  ", "spaced out"),
])
def test_strip_terminator(text, cut):
    assert strip_terminator(text) == cut
    assert is_terminated(text) == (cut != text.strip())


def test_a_stream_waits_for_a_non_word_character_before_trusting_done():
    assert find_terminator("ok DONE") == 3
    assert find_terminator("ok DONE", final=False) is None      # may still become DONEZO
    assert find_terminator("ok DONE.", final=False) == 3
    assert find_terminator("ok DONEZO.", final=False) is None


def test_completion_round_trips_through_strip():
    rng = random.Random(0)
    words = ["hey", "lol", "abandoned", "done", "ok?", "tacos", "|"]
    for _ in range(200):
        reply = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6))).strip()
        assert strip_terminator(completion_text(reply)) == reply
    assert completion_text("hi").endswith(TERMINATOR) and TERMINATOR == " " + DONE


def test_split_and_join_messages():
    assert split_messages("yeah | bartaco? |  | ok") == ["yeah", "bartaco?", "ok"]
    assert join_messages(["haha", "that is amazing"]) == "haha" + MESSAGE_SEPARATOR + "that is amazing"
    assert split_messages(join_messages(["a", "b"])) == ["a", "b"]

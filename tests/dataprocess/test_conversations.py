"""Conversations: a busy chat with no long silence is cut into time blocks for the split."""
from datetime import datetime, timedelta

from dataprocess import Message
from dataprocess.conversations import Stats, conversations, pairs_from_chat
from dataprocess.examples import split_by_conversation
from dataprocess.rules import Rules
from helpers.kept import kept


def gapless(hours: int, every_minutes: int = 5) -> list[Message]:
    """Alex and me taking turns every few minutes for ``hours`` hours: never a 6-hour silence."""
    start = datetime(2024, 5, 1, 8, 0)
    out = []
    for step in range(hours * 60 // every_minutes):
        mine = step % 2 == 1
        out.append(Message("Me" if mine else "Alex", f"message {step}", start + timedelta(minutes=every_minutes * step),
                           "Alex", mine))
    return out


def test_a_gapless_chat_is_cut_into_time_blocks_and_valid_and_test_get_some():
    rules = Rules(session_gap_hours=6)
    pairs = list(pairs_from_chat("Alex", kept(gapless(48)), rules, Stats()))
    blocks = {p.conversation for p in pairs}
    assert len(blocks) >= 8  # 48 hours of chat in blocks of at most ~6 hours
    examples = [{"conversation": p.conversation, "reply": p.reply} for p in pairs]
    splits = split_by_conversation(examples, (0.8, 0.1, 0.1), seed=0)
    assert all(splits[name] for name in ("train", "valid", "test"))


def test_blocks_are_cut_before_a_contact_turn_and_context_never_crosses_one():
    gap = timedelta(hours=6)
    blocks = list(conversations(kept(gapless(30)), gap, timedelta(minutes=30)))
    assert len(blocks) >= 5
    for turns in blocks:
        assert not turns[0].from_me  # a block opens with the contact: no reply is cut from its prompt
        assert turns[-1].end - turns[0].start <= gap + timedelta(minutes=10)
    rules = Rules(session_gap_hours=6, context_turns=4)
    pairs = list(pairs_from_chat("Alex", kept(gapless(30)), rules, Stats()))
    firsts = {}
    for pair in pairs:
        firsts.setdefault(pair.conversation, pair)
    assert all(p.context == [] for p in firsts.values())  # the first pair of every block starts afresh


def test_a_chat_with_silences_is_cut_at_them_as_before():
    msgs = gapless(2) + [Message("Alex", "next day", datetime(2024, 5, 2, 9, 0), "Alex", False),
                         Message("Me", "hi again", datetime(2024, 5, 2, 9, 1), "Alex", True)]
    turns = list(conversations(kept(msgs), timedelta(hours=6), timedelta(minutes=30)))
    assert len(turns) == 2 and turns[1][0].parts == ["next day"]

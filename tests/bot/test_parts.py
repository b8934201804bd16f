"""The bots' parts on their own: playing back the timing, the allowlist, the logs' redaction, and
the engine (debounce, retries) with a scripted backend and a transport of the test's own."""
from __future__ import annotations

import asyncio
import io
import logging

import pytest
from helpers.server import ScriptedBackend

from bot.access import Access, parse_entries
from bot.engine import BotEngine
from bot.logs import Redact
from bot.timing import DEFAULT_TIMING, TimingPlayer, draw
from core.errors import InputError
from core.settings import Timing
from dataprocess.live_prompt import LivePrompt
from server.state import TwinState

TIMING = Timing(replies=5, reply_latency_s=(10.0, 20.0, 30.0), burst_gap_s=(1.0, 2.0, 3.0),
                contact_gap_s=(2.0, 4.0, 6.0), contact_burst_s=(0.0, 5.0, 10.0), typing_chars_per_s=5.0)


def test_draws_follow_the_quantiles():
    assert draw((10.0, 20.0, 30.0), 0.0) == 10.0 and draw((10.0, 20.0, 30.0), 0.75) == 25.0
    player = TimingPlayer(TIMING, seed=1)
    plans = [player.plan(["ok", "sure"]) for _ in range(200)]
    assert all(10.0 <= p.delays[0] <= 30.0 and 1.0 <= p.delays[1] <= 3.0 for p in plans)
    assert player.debounce() == pytest.approx(4.0)  # the median of a contact's gaps


def test_typing_speed_bounds_speed_scales_instant_zeroes():
    player = TimingPlayer(TIMING, seed=1)
    long = "x" * 40  # 8 s at 5 characters a second: longer than any drawn gap
    assert all(player.plan(["a", long]).delays[1] == pytest.approx(8.0) for _ in range(20))
    fast = TimingPlayer(TIMING, seed=1, speed=0.1)
    assert fast.plan(["a", long]).delays[1] == pytest.approx(0.8)
    assert fast.debounce() == pytest.approx(0.4)
    assert TimingPlayer(TIMING, instant=True).plan(["a", "b"]).delays == [0.0, 0.0]
    assert TimingPlayer(TIMING, instant=True).debounce() == 0.0
    capped = TimingPlayer(TIMING, max_delay=12.0, seed=2)
    assert all(capped.plan(["a"]).delays[0] <= 12.0 for _ in range(50))
    assert not TimingPlayer(None).from_data and TimingPlayer(None).timing is DEFAULT_TIMING


def test_allowlist_entries_and_owner_commands(tmp_path):
    listed = tmp_path / "allow.txt"
    listed.write_text("# friends\n123\n@Alex  # alex\n-100456\n")
    assert parse_entries([str(listed), "@sam,77"]) == {"123", "@alex", "-100456", "@sam", "77"}
    with pytest.raises(InputError):
        parse_entries(["no such file"])
    access = Access(parse_entries(["123"]), parse_entries(["@boss"]))
    assert access.allows(123, None, 5) and access.allows(9, "BOSS", 9) and not access.allows(9, "eve", 9)
    assert access.command("/pause", 123, "alex") is None and not access.paused  # not an owner
    assert "paused" in access.command("/pause@twin_test_bot", 9, "boss") and access.paused
    assert access.command("@twin_test_bot hi", 9, "boss") is None
    assert access.command("/resume", 9, "boss") == "resumed" and not access.paused


def test_who_is_turned_away_and_why_is_counted():
    access = Access(parse_entries(["123"]), parse_entries(["@boss"]))
    assert not access.turned_away(123, None, 123) and not access.turned_away(9, "boss", 9)
    assert access.turned_away(9, "eve", 9)                     # not listed
    assert access.turned_away(123, None, -5, "group chat")     # listed, but groups are off
    access.command("/pause", 9, "boss")
    assert access.turned_away(123, None, 123)                  # paused: even the listed
    assert access.ignored == {"not on the allowlist": 1, "group chat (see --groups)": 1, "paused": 1}
    grouped = Access(parse_entries(["123"]), groups=True)
    assert not grouped.turned_away(123, None, -5, "group chat") and not grouped.ignored


def test_logs_never_show_the_token_or_a_traceback():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redact(["s3cret-token"]))
    logger = logging.getLogger("twin.test.redact")
    logger.addHandler(handler)
    try:
        logger.warning("GET https://api.example/bots3cret-token/getMe failed")
        try:
            raise ConnectionError("to https://api.example/bots3cret-token/getUpdates")
        except ConnectionError:
            logger.exception("polling failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "s3cret" not in out and "[token]" in out
    assert "Traceback" not in out and "polling failed (ConnectionError)" in out


class Transport:
    """The test's own platform: records what is sent, fails as scripted."""

    def __init__(self, failures=()):
        self.sent, self.typing, self.failures = [], [], list(failures)

    async def send(self, chat, text):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((chat, text))

    async def typing(self, chat):
        self.typing.append(chat)

    def retry_after(self, exc):
        return 0.01 if isinstance(exc, ConnectionError) else None


def _engine(transport, pieces=("yeah | bartaco? DONE",), **kwargs):
    backend = ScriptedBackend(pieces=pieces)
    twin = TwinState(backend, LivePrompt("maya"))
    return BotEngine(twin, transport, TimingPlayer(TIMING, speed=0.001, seed=0), **kwargs), backend


def test_engine_answers_a_burst_once_and_remembers_the_chat():
    async def main():
        transport = Transport()
        engine, backend = _engine(transport)
        for text in ("hey", "you there?", "tacos?"):
            engine.incoming(7, text)
            await asyncio.sleep(0.001)  # closer together than the latency (10-30 ms here)
        while engine.answered < 1:
            await asyncio.sleep(0.01)
        engine.incoming(7, "bet")
        while engine.answered < 2:
            await asyncio.sleep(0.01)
        await engine.close()
        return transport, backend, engine

    transport, backend, engine = asyncio.run(main())
    assert transport.sent == [(7, "yeah"), (7, "bartaco?")] * 2
    assert len(backend.calls) == 2  # one generation per burst
    first_prompt = backend.calls[0][0][-1]["content"]
    assert first_prompt == "hey | you there? | tacos?"  # the burst as the contact's one turn
    assert [m["content"] for m in backend.calls[1][0][1:]] == ["hey | you there? | tacos?", "yeah | bartaco?", "bet"]
    assert engine.twin.conversations.history("bot", "7")[-1] == ("assistant", "yeah | bartaco?")


def test_engine_retries_network_errors_and_survives_a_lost_message():
    async def main(failures):
        transport = Transport(failures)
        engine, _ = _engine(transport)
        engine.incoming(1, "hi")
        while engine.answered < 1:
            await asyncio.sleep(0.01)
        return transport, engine

    transport, engine = asyncio.run(main([ConnectionError("drop"), ConnectionError("drop")]))
    assert transport.sent == [(1, "yeah"), (1, "bartaco?")] and engine.failures == 0
    transport, engine = asyncio.run(main([ValueError("refused")]))  # not retried: that part is lost
    assert transport.sent == [(1, "bartaco?")] and engine.failures == 1


def test_message_text_is_logged_only_when_asked(caplog):
    async def main(log_messages):
        engine, _ = _engine(Transport(), log_messages=log_messages)
        engine.incoming(3, "meet at the usual place")
        while engine.answered < 1:
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.INFO, logger="twin.bot"):
        asyncio.run(main(False))
    assert "answered a burst" in caplog.text and "usual place" not in caplog.text and "bartaco" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="twin.bot"):
        asyncio.run(main(True))
    assert "usual place" in caplog.text and "bartaco" in caplog.text

"""`twin bot telegram` end to end: the real bot process (python-telegram-bot) against a stand-in of
the Bot API on loopback, answering with a tiny GGUF."""
from __future__ import annotations

import itertools
import subprocess

from botkit import HELLO, TOKEN, TWIN, running_bot


def _after(calls, at):
    return [c for c in calls if c.at >= at and c.method in ("sendMessage", "sendChatAction")]


def test_reply_as_generate_split_with_typing_allowlist_groups_pause_429(api, bot_workspace, tmp_path, served):
    generate, seed = served
    first = generate(HELLO, seed)
    expected = first["messages"]
    with running_bot(api, bot_workspace, tmp_path, "--instant", "--seed", str(seed), "--allow", "111",
                     "--owner", "999", "--allow", "@sam") as bot:
        # an unlisted user, and a group message from an allowed one (groups are off): nothing answered
        api.push("who is this", user_id=555, username="stranger")
        api.push("hi all", user_id=111, chat_id=-100200, chat_type="group")
        at = api.push(HELLO)  # allowed user 111
        assert api.wait_for(lambda calls: len(api.sent()) >= len(expected), 60), bot.log
        calls = _after(api.calls, at)
        # each part its own message, in order, each after a typing action; the same reply as /generate
        assert [c.params["text"] for c in calls if c.method == "sendMessage"] == expected
        assert [c.method for c in calls] == ["sendChatAction", "sendMessage"] * len(expected)
        assert all(c.params == {"chat_id": "111", "action": "typing"} for c in calls if c.method == "sendChatAction")
        assert {c.params["chat_id"] for c in api.sent()} == {"111"}

        # the next message of the chat: the bot remembers it, as /generate with that history and the next seed
        history = [{"role": "user", "content": HELLO}, {"role": "assistant", "content": first["response"]}]
        again = generate("want tacos tonight?", seed + 1, history)["messages"]
        done = len(api.sent())
        api.push("want tacos tonight?")
        assert api.wait_for(lambda calls: len(api.sent()) >= done + len(again), 60), bot.log
        assert [c.params["text"] for c in api.sent()[done:]] == again

        # the owner pauses: nobody is answered; a non-owner's /pause does nothing
        api.push("/pause", user_id=777, username="sam")
        at = api.push("/pause", user_id=999, username="boss")
        assert api.wait_for(lambda calls: any(c.params.get("chat_id") == "999" for c in api.sent()), 30)
        assert "paused" in api.sent()[-1].params["text"]
        before = len(api.sent())
        api.push("are you there?")
        api.push("/resume", user_id=999, username="boss")
        assert api.wait_for(lambda calls: len(api.sent()) >= before + 1, 30)
        assert api.sent()[before].params == {"chat_id": "999", "text": "resumed"}

        # @sam is allowed by name; the API answers 429 (retry after 1 s) then drops a connection
        api.fail("sendMessage", ("429", 1), ("drop",))
        api.fail("getUpdates", ("drop",))
        at = api.push("yo what's up", user_id=777, username="Sam")
        assert api.wait_for(lambda calls: any(c.params.get("chat_id") == "777" for c in api.sent()[before + 1:]), 60), \
            bot.log
        tries = [c for c in api.calls if c.method == "sendMessage" and c.at >= at]
        assert tries[0].params == tries[1].params == tries[2].params  # the same message, tried again
        assert tries[1].at - tries[0].at >= 1.0  # the API's retry_after was waited out
        assert bot.process.poll() is None
    log = bot.log
    # the paused message, the unlisted user's and the group's: counted, not answered; no text logged
    for counted in ("1 not on the allowlist", "1 group chat", "1 paused", "1 command"):
        assert counted in log
    assert "RetryAfter, retrying in 1.0 s" in log
    for text in ("who is this", "hi all", HELLO, "are you there", "what's up", "tacos", *expected):
        assert text not in log
    assert "answered a burst of 1 message" in log


def test_groups_only_when_mentioned_or_replied_to(api, tiny_gguf, tmp_path):
    # a GGUF alone (--model), as `twin serve --model`: no [timing], the defaults (off here)
    with running_bot(api, tiny_gguf, tmp_path, "--instant", "--groups", "--allow", "-100300") as bot:
        group = {"user_id": 222, "username": "pat", "chat_id": -100300, "chat_type": "supergroup"}
        api.push("lunch anyone?", **group)
        handle = "@twin_test_bot"
        at = api.push(f"{handle} lunch?", entities=[{"type": "mention", "offset": 0, "length": len(handle)}], **group)
        assert api.wait_for(lambda calls: len(api.sent()) >= 1, 60), bot.log
        first = len(api.sent())
        assert api.wait_for(lambda calls: "answered" in bot.log, 30)
        api.push("and you?", reply_to_bot=True, **group)
        assert api.wait_for(lambda calls: len(api.sent()) > first and bot.log.count("answered a burst") == 2, 60), \
            bot.log
    assert {c.params["chat_id"] for c in api.sent()} == {"-100300"}
    assert min(c.at for c in api.sent()) > at
    assert bot.log.count("answered a burst") == 2
    assert "1 group message not for the bot" in bot.log


def _gaps(api, at):
    sent = [c.at for c in api.sent() if c.at >= at]
    return [sent[0] - at] + [b - a for a, b in itertools.pairwise(sent)]


def test_timing_debounce_and_speed(api, bot_workspace, tmp_path, served):
    """The workspace's [timing]: latency 2 s, gaps 2 s, debounce 0.8 s (botkit.TIMING), scaled by --speed."""
    generate, seed = served
    parts = len(generate(HELLO, seed)["messages"])
    measured = {}
    for speed in (1.0, 0.5):
        with running_bot(api, bot_workspace, tmp_path, "--speed", str(speed), "--seed", str(seed),
                         "--allow", "111", "--rate-limit", "off") as bot:
            at = api.push(HELLO)
            assert api.wait_for(lambda calls, at=at: len([c for c in api.sent() if c.at >= at]) >= parts, 60), bot.log
            measured[speed] = _gaps(api, at)
            # a burst: three messages closer together than the debounce get one answer, after the last
            first = api.push("wait", chat_id=111)
            api.push("one more thing")
            last = api.push("ok so")
            assert api.wait_for(lambda calls: "answered a burst of 3 messages" in bot.log, 60), bot.log
            answer = [c for c in api.sent() if c.at >= first]
            assert answer and min(c.at for c in answer) >= last + 2.0 * speed  # the latency, from the last one
            typing = [c for c in api.calls if c.method == "sendChatAction" and c.at >= first]
            assert typing and min(c.at for c in typing) > last
            assert bot.log.count("answered a burst") == 2
    for speed, gaps in measured.items():
        assert all(gap >= 2.0 * speed for gap in gaps), (speed, gaps)  # never sooner than chosen
    slow, fast = sum(measured[1.0]), sum(measured[0.5])
    assert 1.5 < slow / fast < 2.6, measured  # half the speed: about half the delays


def _bot(*args, env=None, timeout=120):
    return subprocess.run([str(TWIN), "bot", "telegram", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_start_up_errors_are_one_line(api, bot_workspace, tmp_path, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    no_token = _bot("--workspace", str(bot_workspace), "--api-url", api.url, env=env)
    assert no_token.returncode == 2 and "TELEGRAM_BOT_TOKEN" in no_token.stderr
    assert "Traceback" not in no_token.stderr

    wrong = tmp_path / "wrong"
    wrong.write_text("111:not-the-token")
    refused = _bot("--workspace", str(bot_workspace), "--api-url", api.url, "--token-file", str(wrong),
                   "--threads", "1", "--allow", "1", env=env)
    assert refused.returncode == 2, refused.stderr
    assert "refused the token" in refused.stderr and "Traceback" not in refused.stderr + refused.stdout
    assert "not-the-token" not in refused.stderr + refused.stdout

    good = tmp_path / "good"
    good.write_text(TOKEN)
    webhook = _bot("--workspace", str(bot_workspace), "--api-url", api.url, "--token-file", str(good),
                   "--threads", "1", "--allow", "1", "--webhook", "--ngrok-path", str(tmp_path / "no-ngrok"), env=env)
    assert webhook.returncode == 1 and "ngrok" in webhook.stderr and "Traceback" not in webhook.stderr
    assert TOKEN not in webhook.stderr + webhook.stdout

    bad_allow = _bot("--workspace", str(bot_workspace), "--token-file", str(good), "--allow", "not a thing", env=env)
    assert bad_allow.returncode == 2 and "--allow" in bad_allow.stderr

    bad_rate = _bot("--workspace", str(bot_workspace), "--token-file", str(good), "--rate-limit", "lots", env=env)
    assert bad_rate.returncode == 2 and "rate" in bad_rate.stderr and "Traceback" not in bad_rate.stderr

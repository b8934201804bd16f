"""`twin bot discord` end to end: the real bot process (discord.py's own client, gateway and REST
code) against a stand-in of Discord's REST API and gateway on loopback, with a tiny GGUF."""
from __future__ import annotations

import pytest
from botkit import HELLO, TOKEN, running_bot
from discord_standin import BOT_USER, DiscordStandIn, guild, message, user

ALEX = user(111, "alex")
DM, SERVER, CHANNEL = 5001, 7001, 7002


@pytest.fixture
def discord_api():
    with DiscordStandIn(TOKEN) as standin:
        yield standin


def test_direct_messages_allowlist_and_a_429(discord_api, bot_workspace, tmp_path, served):
    generate, seed = served
    expected = generate(HELLO, seed)["messages"]
    api = discord_api
    with running_bot(api, bot_workspace, tmp_path, "--instant", "--seed", str(seed), "--allow", "111",
                     "--api-url", api.url, "--gateway-url", api.gateway, platform="discord") as bot:
        api.dispatch("MESSAGE_CREATE", message(6001, user(555, "stranger"), "who is this"))
        api.fail(("429", 0.3))  # the first send is rate limited: discord.py waits it out and sends again
        at = api.dispatch("MESSAGE_CREATE", message(DM, ALEX, HELLO))
        assert api.wait_for(lambda: len(api.sent()) >= len(expected), 60), bot.log
        calls = [c for c in api.calls if c.at >= at and c.fault is None]
        assert [c.body["content"] for c in calls if c.method == "message"] == expected  # as POST /generate
        methods = [c.method for c in calls]
        assert methods[0] == "typing" and methods.count("typing") >= len(expected)
        assert all(methods[methods.index("message") - 1] == "typing" for _ in [0])
        assert {c.channel for c in api.calls} == {str(DM)}  # never the stranger's channel
        assert api.wait_for(lambda: "answered a burst" in bot.log, 30)
    assert "1 not on the allowlist" in bot.log
    assert "who is this" not in bot.log and HELLO not in bot.log


def test_servers_only_with_groups_and_when_mentioned(discord_api, bot_workspace, tmp_path):
    api = discord_api
    me = {k: BOT_USER[k] for k in ("id", "username", "discriminator", "global_name", "avatar")}
    with running_bot(api, bot_workspace, tmp_path, "--instant", "--groups", "--allow", str(CHANNEL),
                     "--api-url", api.url, "--gateway-url", api.gateway, platform="discord") as bot:
        api.dispatch("GUILD_CREATE", guild(SERVER, CHANNEL))
        api.dispatch("MESSAGE_CREATE", message(CHANNEL, user(222, "pat"), "lunch anyone?", guild_id=SERVER))
        at = api.dispatch("MESSAGE_CREATE", message(CHANNEL, user(222, "pat"), f"<@{BOT_USER['id']}> lunch?",
                                                    guild_id=SERVER, mentions=[me]))
        assert api.wait_for(lambda: "answered a burst" in bot.log, 60), bot.log
        earlier = message(CHANNEL, BOT_USER, "earlier", guild_id=SERVER)
        api.dispatch("MESSAGE_CREATE", message(CHANNEL, user(222, "pat"), "and you?", guild_id=SERVER,
                                               reply_to=earlier))
        assert api.wait_for(lambda: bot.log.count("answered a burst") == 2, 60), bot.log
    assert min(c.at for c in api.sent()) > at
    assert {c.channel for c in api.calls} == {str(CHANNEL)}
    assert "1 server message not for the bot" in bot.log


def test_servers_are_off_by_default(discord_api, bot_workspace, tmp_path):
    api = discord_api
    with running_bot(api, bot_workspace, tmp_path, "--instant", "--allow", "222", "--api-url", api.url, "--gateway-url", api.gateway,
                     platform="discord") as bot:
        api.dispatch("GUILD_CREATE", guild(SERVER, CHANNEL))
        api.dispatch("MESSAGE_CREATE", message(CHANNEL, user(222, "pat"), f"<@{BOT_USER['id']}> hi", guild_id=SERVER,
                                               mentions=[BOT_USER]))
        assert api.wait_for(lambda: "server channel" in bot.log, 30), bot.log
    assert not api.calls


def test_a_refused_token_is_one_line(discord_api, bot_workspace, tmp_path):
    import subprocess

    from botkit import TWIN

    wrong = tmp_path / "wrong"
    wrong.write_text("111:not-the-token")
    refused = subprocess.run([str(TWIN), "bot", "discord", "--workspace", str(bot_workspace), "--token-file",
                              str(wrong), "--threads", "1", "--allow", "1", "--api-url", discord_api.url,
                              "--gateway-url", discord_api.gateway], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "Discord refused the token" in refused.stderr and "Traceback" not in refused.stderr + refused.stdout
    assert "not-the-token" not in refused.stderr + refused.stdout


def test_sigterm_stops_the_bot_as_ctrl_c_does(discord_api, bot_workspace, tmp_path):
    import signal

    with running_bot(discord_api, bot_workspace, tmp_path, "--instant", "--allow", "111",
                     "--api-url", discord_api.url, "--gateway-url", discord_api.gateway, platform="discord") as bot:
        bot.process.send_signal(signal.SIGTERM)
        bot.process.wait(60)
    assert bot.process.returncode == 0 and "stopped" in bot.log   # running_bot checks both again

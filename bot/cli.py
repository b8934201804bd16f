"""The ``twin bot telegram|discord`` commands: the model loaded as ``twin serve`` loads it, the
person's timing from ``twin.toml`` ``[timing]``, the platform's client around bot.engine.

The token comes from ``--token-file`` or the environment (``TELEGRAM_BOT_TOKEN``,
``DISCORD_BOT_TOKEN``), never from the command line (other users can read that) and is never
printed or logged.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from core.errors import InputError, TwinError, cli_errors
from core.workspace import Workspace
from server.cli import check_rate, load, model_options
from server.conversations import ConversationStore
from server.ratelimit import RateLimiter
from server.state import MAX_TOKENS_CAP, TwinState

from . import logs
from .access import Access, parse_entries
from .engine import BotEngine
from .timing import TimingPlayer

log = logging.getLogger("twin.bot")


def bot_options(func):
    """What both platforms' commands take besides the model."""
    for option in reversed([
        click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="File holding the bot's token [default: the platform's environment variable]."),
        click.option("--allow", multiple=True, metavar="ID|@NAME|FILE",
                     help="Who gets answers: user or chat ids, @names, or a file of them (repeatable). "
                          "Nobody by default."),
        click.option("--owner", multiple=True, metavar="ID|@NAME",
                     help="May send /pause and /resume (and is allowed). Repeatable."),
        click.option("--groups", is_flag=True, help="Answer in group chats / servers too, only when mentioned "
                                                    "or replied to (off by default)."),
        click.option("--speed", type=click.FloatRange(0, 100, min_open=True), default=1.0, show_default=True,
                     help="Scale every delay (0.1: ten times faster)."),
        click.option("--instant", is_flag=True, help="No timing: answer at once, parts back to back."),
        click.option("--max-delay", type=click.FloatRange(0), default=600.0, show_default=True,
                     help="Longest delay in seconds before one message (before --speed)."),
        click.option("--seed", type=click.IntRange(0, 2 ** 31 - 1),
                     help="Seed of the first reply, the next one of each reply after it (as POST /generate's "
                          "'seed') and of the timing draws [default: fresh seeds]."),
        click.option("--rate-limit", default="6/min", show_default=True, callback=check_rate,
                     help="Answers per chat, e.g. 6/min, 100/hour; 'off'."),
        click.option("--max-tokens", "max_tokens_cap", type=click.IntRange(1, 4096), default=MAX_TOKENS_CAP,
                     show_default=True, help="Most tokens one reply may have."),
        click.option("--conversations", type=click.IntRange(1), default=1000, show_default=True,
                     help="Chats remembered (least recently used dropped)."),
        click.option("--conversation-ttl", type=click.FloatRange(1), default=60.0, show_default=True,
                     help="Minutes an idle chat's memory is kept."),
        click.option("--log-messages", is_flag=True, help="Log message text (off by default: logs hold no text)."),
    ]):
        func = option(func)
    return func


def read_token(token_file: Path | None, env: str) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the token file {token_file}: {type(exc).__name__}") from None
        if not token:
            raise InputError(f"the token file {token_file} is empty")
        return token
    token = os.environ.get(env, "").strip()
    if not token:
        raise InputError(f"no bot token: give --token-file FILE or set {env}")
    return token


def prepare(opts: dict, env: str):
    """Token, access, and a function building the engine over the loaded model."""
    token = read_token(opts["token_file"], env)
    logs.setup(secrets=[token])
    access = Access(parse_entries(opts["allow"]), parse_entries(opts["owner"]), opts["groups"])
    served = load(opts["workspace"], opts["model_path"], opts["backend"], opts["persona"], opts["gpu_layers"],
                  opts["threads"], opts["context"])
    timing = Workspace(opts["workspace"]).settings().timing if opts["workspace"] else None
    player = TimingPlayer(timing, speed=opts["speed"], instant=opts["instant"], max_delay=opts["max_delay"],
                          seed=opts["seed"])
    twin = TwinState(served.backend, served.prompts(), served.sampling,
                     max_tokens_cap=opts["max_tokens_cap"],
                     conversations=ConversationStore(opts["conversations"], ttl=opts["conversation_ttl"] * 60))
    rate = RateLimiter.parse(opts["rate_limit"])
    click.echo(f"the twin {served.persona!r} ({served.backend.name}); timing: "
               + ("off (--instant)" if opts["instant"] else
                  ("the person's own" if player.from_data else "defaults (no [timing] measured: run twin process)"))
               + (f", delays x{opts['speed']:g}" if opts["speed"] != 1 else ""))
    if not (access.allowed or access.owners):
        click.echo("warning: no --allow or --owner given: the bot answers nobody (it only counts messages)",
                   err=True)

    def make_engine(transport):
        return BotEngine(twin, transport, player, rate=rate, seed=opts["seed"], log_messages=opts["log_messages"])

    return token, access, served, make_engine


@click.group("bot")
def bot_command() -> None:
    """Answer as the twin on Telegram or Discord, with the person's own timing."""


@bot_command.command("telegram")
@model_options
@bot_options
@click.option("--api-url", default="https://api.telegram.org/bot", show_default=True,
              help="The Bot API's base URL (a self-hosted telegram-bot-api server: http://HOST:PORT/bot).")
@click.option("--webhook", is_flag=True, help="Receive updates by webhook through an ngrok tunnel "
                                               "(as `twin serve --public`) instead of long polling.")
@click.option("--webhook-port", type=click.IntRange(1, 65535), default=8443, show_default=True,
              help="Local port the webhook listens on (the tunnel's target).")
@click.option("--ngrok-token", envvar="NGROK_AUTHTOKEN", help="ngrok auth token (env NGROK_AUTHTOKEN).")
@click.option("--ngrok-path", type=click.Path(dir_okay=False), help="Use this ngrok agent binary.")
def telegram_command(**opts):
    """Run the twin as a Telegram bot (token: --token-file or TELEGRAM_BOT_TOKEN)."""
    from . import telegram_bot

    with cli_errors():
        token, access, served, make_engine = prepare(opts, "TELEGRAM_BOT_TOKEN")
        webhook_url = None
        if opts["webhook"]:
            from server.tunnel import TunnelError, open_tunnel

            try:
                webhook_url = open_tunnel(opts["webhook_port"], authtoken=opts["ngrok_token"],
                                          ngrok_path=opts["ngrok_path"])
            except TunnelError as exc:
                raise TwinError(f"--webhook: {exc}") from None
            click.echo(f"webhook through {webhook_url}")
        app = telegram_bot.build_application(token, opts["api_url"], access, make_engine)
        click.echo("telegram bot running (Ctrl-C stops it)")
        try:
            telegram_bot.run(app, webhook_url=webhook_url, webhook_port=opts["webhook_port"])
        except Exception as exc:
            from telegram import error

            if isinstance(exc, error.InvalidToken):
                raise InputError("Telegram refused the token: check --token-file or TELEGRAM_BOT_TOKEN") from None
            if isinstance(exc, error.TelegramError):
                raise TwinError(f"telegram: {type(exc).__name__}: could not start the bot") from None
            raise
        finally:
            served.backend.close()
    click.echo("stopped")


@bot_command.command("discord")
@model_options
@bot_options
@click.option("--api-url", default="https://discord.com/api/v10", show_default=True,
              help="Discord's REST base URL (a proxy).")
@click.option("--gateway-url", default="wss://gateway.discord.gg/", show_default=True,
              help="Discord's gateway (a proxy).")
def discord_command(**opts):
    """Run the twin as a Discord bot (token: --token-file or DISCORD_BOT_TOKEN)."""
    from . import discord_bot

    with cli_errors():
        token, access, served, make_engine = prepare(opts, "DISCORD_BOT_TOKEN")
        client = discord_bot.build_client(access, make_engine, api_url=opts["api_url"],
                                          gateway_url=opts["gateway_url"])
        click.echo("discord bot running (Ctrl-C stops it)")
        try:
            discord_bot.run(client, token)
        except Exception as exc:
            import discord

            if isinstance(exc, discord.LoginFailure):
                raise InputError("Discord refused the token: check --token-file or DISCORD_BOT_TOKEN") from None
            if isinstance(exc, discord.PrivilegedIntentsRequired):
                raise InputError("turn on the bot's Message Content intent in the Discord developer portal") from None
            if isinstance(exc, (discord.DiscordException, OSError)):
                raise TwinError(f"discord: {type(exc).__name__}: could not start the bot") from None
            raise
        finally:
            served.backend.close()
    click.echo("stopped")

"""The Discord bot (discord.py): direct messages, and in servers only when mentioned or replied to.

Servers are off unless ``--groups``. Messages are checked by bot.access (the allowlist by user
id, channel id or @name; an owner's ``/pause`` and ``/resume``) and answered by bot.engine with
the person's timing. discord.py keeps the gateway connection (it reconnects after a drop) and
waits out Discord's rate limits itself; what still fails when sending is retried by the engine.
Reading messages needs the bot's "Message Content" intent (the developer portal's Bot page).
"""
from __future__ import annotations

import logging

from .access import Access

log = logging.getLogger("twin.bot")

API_URL = "https://discord.com/api/v10"


class DiscordTransport:
    """Sends to the channels the messages came from (kept by id)."""

    def __init__(self) -> None:
        self.channels: dict[int, object] = {}

    async def send(self, chat, text: str) -> None:
        await self.channels[chat].send(text)

    async def typing(self, chat) -> None:
        await self.channels[chat].typing()  # awaited (not entered): one typing action

    def retry_after(self, exc: BaseException) -> float | None:
        import asyncio

        import aiohttp
        import discord

        if isinstance(exc, discord.HTTPException) and not isinstance(exc, (discord.Forbidden, discord.NotFound)):
            if exc.status == 429:
                return max(0.1, float(getattr(exc, "retry_after", 0) or 1.0))
            return 0.0 if exc.status >= 500 else None
        if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, discord.GatewayNotFound)):
            return 0.0
        return None


def _for_me(message, me) -> tuple[bool, str]:
    """Whether a server message is for the bot (mention or reply), and its text without the mention."""
    text = message.content or ""
    mentioned = any(user.id == me.id for user in message.mentions)
    for form in (f"<@{me.id}>", f"<@!{me.id}>"):
        text = text.replace(form, " ")
    ref = message.reference.resolved if message.reference is not None else None
    replied = ref is not None and getattr(getattr(ref, "author", None), "id", None) == me.id
    return mentioned or replied, " ".join(text.split())


def build_client(access: Access, make_engine, *, api_url: str | None = None, gateway_url: str | None = None):
    """A discord.Client whose ``on_message`` feeds the engine; ``api_url`` and ``gateway_url`` move
    discord.py's REST base (``discord.http.Route.BASE``) and first gateway
    (``DiscordWebSocket.DEFAULT_GATEWAY``) to a proxy or stand-in."""
    import discord
    import yarl
    from discord.gateway import DiscordWebSocket

    if api_url:
        discord.http.Route.BASE = api_url.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)
    transport = DiscordTransport()
    client.twin_transport = transport
    client.twin_engine = None

    def engine():
        if client.twin_engine is None:
            client.twin_engine = make_engine(transport)
        return client.twin_engine

    @client.event
    async def on_ready() -> None:
        engine()
        log.info("discord: connected as %s; answering %d allowed ids/names", client.user,
                 len(access.allowed | access.owners))

    @client.event
    async def on_message(message) -> None:
        me = client.user
        if me is None or message.author.id == me.id:
            return
        if message.author.bot:
            access.ignore("another bot")
            return
        text = message.content or ""
        author, channel = message.author, message.channel
        answer = access.command(text, author.id, author.name) if text else None
        if answer is not None:
            transport.channels[channel.id] = channel
            await engine().attempt(channel.id, transport.send, channel.id, answer, what="message")
            return
        if not text:
            access.ignore("not text")
            return
        in_server = message.guild is not None
        if access.turned_away(author.id, author.name, channel.id, "server channel" if in_server else None):
            return
        if in_server:
            for_me, text = _for_me(message, me)
            if not for_me or not text:
                access.ignore("server message not for the bot")
                return
        if text.startswith("/"):
            access.ignore("command")
            return
        transport.channels[channel.id] = channel
        # whom the twin texts, as its training chats were named: the person, or the server channel
        engine().incoming(channel.id, text, author.display_name if message.guild is None
                          else f"{message.guild.name} #{getattr(channel, 'name', '')}")

    @client.event
    async def on_error(event, *args, **kwargs) -> None:
        import sys

        log.warning("discord: handling %s failed (%s)", event, type(sys.exc_info()[1]).__name__)

    return client


CLOSE_TIMEOUT = 15.0   # seconds the gateway and HTTP sessions get to close before the bot stops anyway


def run(client, token: str) -> None:
    """Connect and run until Ctrl-C or SIGTERM, then close the connection (at most
    :data:`CLOSE_TIMEOUT` seconds) and return.

    The stop is an event set by this process's own signal handler, not the cancel that
    ``asyncio.run`` sends the main task on Ctrl-C: that cancel can be lost inside a library's
    timeout (once, in the test suite under load, the bot kept running after Ctrl-C), an event
    cannot. Where the loop has no signal handlers (Windows), Ctrl-C stops it as asyncio does."""
    import asyncio
    import contextlib
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        async with client:
            running = asyncio.create_task(client.start(token, reconnect=True))
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if client.twin_engine is not None:
                    await client.twin_engine.close()
                with contextlib.suppress(Exception, asyncio.CancelledError):   # stopping anyway: a failed close says nothing
                    await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)
                running.cancel()
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), CLOSE_TIMEOUT)
            if running.done() and not running.cancelled() and running.exception() is not None:
                raise running.exception()   # a refused token, a missing intent: the CLI says which

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

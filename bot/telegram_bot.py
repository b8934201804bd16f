"""The Telegram bot (python-telegram-bot): long polling, or a webhook through the ngrok tunnel.

Each incoming message is checked (bot.access: the allowlist, an owner's /pause and /resume,
groups only with ``--groups`` and then only when the bot is mentioned or replied to) and handed
to the engine (bot.engine), which answers a burst once with the person's timing. ``api_url`` is
python-telegram-bot's ``base_url``: Telegram's own ``https://api.telegram.org/bot``, a
self-hosted ``telegram-bot-api`` server, or the tests' stand-in. The token is only ever in the
request path, which the logs never show (bot.logs).
"""
from __future__ import annotations

import logging
import secrets
import warnings

from .access import Access
from .engine import BotEngine

log = logging.getLogger("twin.bot")

API_URL = "https://api.telegram.org/bot"
GROUP_TYPES = ("group", "supergroup")


def _seconds(value) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


class TelegramTransport:
    def __init__(self, bot) -> None:
        self.bot = bot

    async def send(self, chat, text: str) -> None:
        await self.bot.send_message(chat_id=chat, text=text)

    async def typing(self, chat) -> None:
        from telegram.constants import ChatAction

        await self.bot.send_chat_action(chat_id=chat, action=ChatAction.TYPING)

    def retry_after(self, exc: BaseException) -> float | None:
        from telegram import error

        if isinstance(exc, error.RetryAfter):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # v22 warns that retry_after becomes a timedelta
                return max(0.1, _seconds(exc.retry_after))
        if isinstance(exc, (error.BadRequest, error.Forbidden, error.InvalidToken)):
            return None
        if isinstance(exc, (error.TimedOut, error.NetworkError)):
            return 0.0
        return None


def file_url(api_url: str) -> str:
    """The Bot API's file URL beside ``api_url`` (``.../bot`` -> ``.../file/bot``)."""
    return api_url[:-len("bot")] + "file/bot" if api_url.endswith("bot") else api_url.rstrip("/") + "/file/bot"


def _mentions_me(message, me) -> tuple[bool, str]:
    """Whether a group message is for the bot (mention or reply to it), and its text without the mention."""
    text = message.text or message.caption or ""
    handle = f"@{me.username}".lower() if me.username else None
    mentioned = False
    for entity, value in message.parse_entities().items() if message.text else ():
        if (entity.type == "mention" and handle and value.lower() == handle) or \
                (entity.type == "text_mention" and entity.user and entity.user.id == me.id):
            mentioned = True
            text = text.replace(value, " ")
    replied = message.reply_to_message is not None and message.reply_to_message.from_user is not None \
        and message.reply_to_message.from_user.id == me.id
    return mentioned or replied, " ".join(text.split())


def build_application(token: str, api_url: str, access: Access, make_engine):
    """The python-telegram-bot Application with the twin's message handler.

    ``make_engine(transport)`` builds the :class:`BotEngine` once the bot exists."""
    from telegram.ext import Application, ApplicationBuilder, MessageHandler, filters

    holder: dict = {}

    async def post_init(app: Application) -> None:
        holder["engine"] = make_engine(TelegramTransport(app.bot))
        log.info("telegram: connected as @%s; answering %d allowed ids/names", app.bot.username,
                 len(access.allowed | access.owners))

    async def post_stop(app: Application) -> None:
        engine = holder.get("engine")
        if engine is not None:
            await engine.close()

    async def on_message(update, context) -> None:
        message = update.effective_message
        if message is None or update.edited_message is not None:
            return
        engine: BotEngine = holder["engine"]
        user, chat = message.from_user, message.chat
        text = message.text or message.caption
        if user is None or not text:
            access.ignore("not text")
            return
        answer = access.command(text, user.id, user.username)
        if answer is not None:
            await engine.attempt(chat.id, engine.transport.send, chat.id, answer, what="message")
            return
        in_group = chat.type in GROUP_TYPES
        if access.turned_away(user.id, user.username, chat.id, "group chat" if in_group else None):
            return
        if in_group:
            for_me, text = _mentions_me(message, context.bot)
            if not for_me or not text:
                access.ignore("group message not for the bot")
                return
        elif chat.type != "private":
            access.ignore("channel")
            return
        if text.startswith("/"):
            access.ignore("command")
            return
        # whom the twin texts, as its training chats were named: the person, or the group's title
        engine.incoming(chat.id, text, chat.title if chat.type in GROUP_TYPES else user.full_name)

    async def on_error(update, context) -> None:
        log.warning("telegram: handling an update failed (%s)", type(context.error).__name__)

    app = (ApplicationBuilder().token(token).base_url(api_url).base_file_url(file_url(api_url))
           .post_init(post_init).post_stop(post_stop).build())
    app.add_handler(MessageHandler(filters.ALL, on_message))
    app.add_error_handler(on_error)
    return app


def run(app, *, webhook_url: str | None = None, webhook_port: int = 8443, poll_timeout: float = 10.0) -> None:
    """Run until Ctrl-C (python-telegram-bot stops cleanly on SIGINT/SIGTERM)."""
    if webhook_url is None:
        app.run_polling(allowed_updates=["message"], timeout=poll_timeout, bootstrap_retries=-1,
                        close_loop=False)
        return
    path = secrets.token_urlsafe(16)  # the webhook's path: not the token, not guessable
    app.run_webhook(listen="127.0.0.1", port=webhook_port, url_path=path, webhook_url=f"{webhook_url}/{path}",
                    secret_token=secrets.token_urlsafe(24), allowed_updates=["message"], bootstrap_retries=-1,
                    close_loop=False)

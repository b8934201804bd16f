"""Logging for the bots: a line per event, never the token, never message text (unless asked).

:func:`setup` installs a handler whose filter replaces each secret with ``[token]`` in every
record (a library that puts the token in a URL cannot leak it), and quiets the HTTP client
loggers that log request URLs (Telegram's Bot API has the token in its URL path).
"""
from __future__ import annotations

import logging
import sys


class Redact(logging.Filter):
    def __init__(self, secrets) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[token]")
            record.msg, record.args = message, None
        if record.exc_info:  # a traceback could hold the token too: keep its one line
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.exc_info, record.exc_text, record.args = None, None, None
        return True


def setup(secrets=(), level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiohttp.access", "discord.http", "discord.gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

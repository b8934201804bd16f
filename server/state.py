"""What the routes share: the backend, the twin's prompt builder and decoding defaults, the
stores, the limits. Built once by :func:`server.app.create_app`; a blueprint gets it with
:func:`current`. Everything here but :func:`current` is plain Python (no request context).

Under ``twin serve`` the backend is a :class:`~server.backends.SwappableBackend`: a hot swap
(server.hot_swap) changes the model behind it and replaces ``sampling`` with the new model's
decoding defaults; every request reads both afresh, so it needs nothing else here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from dataprocess.feedback import FeedbackStore
from dataprocess.live_prompt import LivePrompt

from core.settings import Sampling

from .conversations import ConversationStore
from voice.decoding import Decoding
from .keys import KeyRing
from .metrics import Metrics
from .ratelimit import RateLimiter
from voice.replies import Reply
from .reply_log import ReplyLog, ReplyRecord, new_reply_id

log = logging.getLogger("twin.server")

MAX_TOKENS_CAP = 256


@dataclass
class TwinState:
    backend: object
    prompts: LivePrompt = field(default_factory=LivePrompt)
    sampling: Sampling = field(default_factory=Sampling)
    keys: KeyRing | None = None
    limiter: RateLimiter | None = None
    auth_failures: RateLimiter | None = None
    log_requests: bool = False
    max_tokens_cap: int = MAX_TOKENS_CAP
    conversations: ConversationStore = field(default_factory=ConversationStore)
    replies: ReplyLog = field(default_factory=ReplyLog)
    feedback: FeedbackStore | None = None
    cors_origins: frozenset[str] = frozenset()
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def persona(self) -> str:
        return self.prompts.persona

    @property
    def model_name(self) -> str:
        return getattr(self.backend, "name", "twin")

    def decoding(self) -> Decoding:
        """The twin's decoding defaults, the reply length capped by the server's limit."""
        base = Decoding.from_sampling(self.sampling)
        return base.with_changes(max_tokens=min(base.max_tokens, self.max_tokens_cap))

    def remember(self, owner: str, reply_id: str, history: Sequence[tuple[str, str]], incoming: str,
                 reply: Reply, conversation_id: str | None = None) -> None:
        """Keep the server's own record of a reply it produced (what /feedback rates)."""
        context, turn = self.prompts.split(history, incoming)
        self.replies.add(ReplyRecord(reply_id, owner, tuple(context), turn, reply.text, conversation_id))
        self.metrics.reply(reply)

    def note(self, route: str, incoming: str, reply: Reply) -> None:
        if self.log_requests:
            log.info("%s: %r -> %r", route, incoming, reply.text)
        else:
            log.info("%s: %d chars in, %d tokens out (%s)", route, len(incoming), reply.completion_tokens,
                     reply.finish_reason)


def current() -> TwinState:
    """The running app's state (inside a request)."""
    from flask import current_app

    return current_app.extensions["twin"]


__all__ = ["MAX_TOKENS_CAP", "TwinState", "current", "new_reply_id"]

"""What the Telegram and Discord bots share: a chat's burst answered once, in the person's timing.

A platform client hands each allowed message to :meth:`BotEngine.incoming`. A burst's reply
latency is drawn when it starts (bot.timing); each further message restarts the wait, so the
reply is due that latency after the contact's last message. The engine starts generating that
long before it is due, less the time generations have been taking, and answers the whole burst once
through the server's own reply path: the history the chat has (the server's
:class:`~server.conversations.ConversationStore`, same limits and expiry), the burst's messages
as the contact's turn, the prompt and decoding defaults of :class:`~server.state.TwinState`
(the same cleaning, context cut and token cap as ``POST /generate``) and
:func:`voice.replies.complete` (no empty reply). A bot reply and a ``/generate`` reply to the same
history and seed are the same.

Each `` | `` part goes out as its own message after its delay, with the typing indicator shown
before it. Messages that come in while a reply is going out make the next burst. Each chat has
its own rate limit (server.ratelimit). The platform's errors are retried with backoff (its
retry-after when it gives one); nothing a platform or the model raises stops the bot.

Logs hold counts and times per answer (chats by a number of this run, not by id), never the
text unless ``log_messages``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol

from server.ratelimit import RateLimiter
from server.state import TwinState
from voice.backend import PromptTooLong
from voice.queueing import Overloaded
from voice.replies import complete

from .timing import TimingPlayer

log = logging.getLogger("twin.bot")

SEND_TRIES = 6
BACKOFF_S = (0.5, 30.0)   # first wait after a network error, and the longest
TYPING_EVERY_S = 4.0      # platforms show "typing" for about 5 s after each action
OWNER = "bot"             # the conversation store's namespace for the bot's chats


class Transport(Protocol):
    """A platform's side: send text and the typing action; say which errors are worth retrying."""

    async def send(self, chat: Hashable, text: str) -> None: ...

    async def typing(self, chat: Hashable) -> None: ...

    def retry_after(self, exc: BaseException) -> float | None:
        """Seconds to wait before retrying after ``exc`` (None: do not retry)."""


@dataclass
class ChatState:
    number: int
    pending: list[str] = field(default_factory=list)
    last: float = 0.0                 # time.monotonic() of the last message of the burst
    task: asyncio.Task | None = None  # the wait (then the answer) in progress
    latency: float | None = None      # the burst's drawn latency (scaled seconds)
    busy: bool = False                # generating or sending: new messages wait for the next burst
    contact: str | None = None        # who texts in this chat (their name on the platform): the prompt's contact


class BotEngine:
    def __init__(self, twin: TwinState, transport: Transport, player: TimingPlayer, *,
                 rate: RateLimiter | None = None, seed: int | None = None, log_messages: bool = False) -> None:
        self.twin, self.transport, self.player = twin, transport, player
        self.rate, self.seed, self.log_messages = rate, seed, log_messages
        self.chats: dict[Hashable, ChatState] = {}
        self.answered = 0
        self.failures = 0
        self.generation_s = 0.0  # how long generations take (moving average): started that much early

    # --- what a platform client calls -------------------------------------------------------------

    def incoming(self, chat: Hashable, text: str, contact: str | None = None) -> None:
        """An allowed message of ``chat`` (in the running event loop); ``contact``: the sender's
        name on the platform, which the prompt names as whom the twin is texting (dataprocess.memory)."""
        state = self.chats.get(chat)
        if state is None:
            state = self.chats[chat] = ChatState(len(self.chats) + 1)
        state.pending.append(text)
        if contact:
            state.contact = contact
        state.last = time.monotonic()
        if self.log_messages:
            log.info("chat #%d: message %r", state.number, text)
        if not state.busy:
            self._schedule(chat, state)

    async def close(self) -> None:
        """Stop every chat's pending work (Ctrl-C)."""
        tasks = [s.task for s in self.chats.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one chat's answers -----------------------------------------------------------------------

    def _schedule(self, chat: Hashable, state: ChatState) -> None:
        if state.task is not None and not state.task.done():
            state.task.cancel()
        if state.latency is None:
            state.latency = self.player.latency()
        state.task = asyncio.get_running_loop().create_task(self._answer_when_quiet(chat, state))

    async def _answer_when_quiet(self, chat: Hashable, state: ChatState) -> None:
        try:
            wait = max(self.player.debounce(), state.latency - self.generation_s) - (time.monotonic() - state.last)
            await asyncio.sleep(max(0.0, wait))
            state.busy = True
            burst, state.pending = state.pending, []
            latency, state.latency = state.latency, None
            try:
                await self._answer(chat, state, burst, latency, state.last)
            finally:
                state.busy = False
            if state.pending:  # arrived while answering: the next burst
                self._schedule(chat, state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one chat's failure never stops the bot
            self.failures += 1
            log.warning("chat #%d: could not answer (%s)", state.number, type(exc).__name__)

    def _reply(self, chat: Hashable, burst: list[str], seed: int | None, contact: str | None = None):
        """The twin's reply to ``burst``, exactly as POST /generate makes it (in a worker thread)."""
        twin = self.twin
        key = str(chat)
        history = twin.conversations.history(OWNER, key) + [("user", text) for text in burst[:-1]]
        decoding = twin.decoding().with_changes(seed=seed)
        try:
            reply = complete(twin.backend, twin.prompts.messages(history, burst[-1], contact), decoding)
        except PromptTooLong:  # the chat grew past the model's context: start it over
            twin.conversations.reset(OWNER, key)
            reply = complete(twin.backend, twin.prompts.messages([("user", t) for t in burst[:-1]], burst[-1],
                                                                 contact), decoding)
        twin.conversations.append(OWNER, key, *[("user", text) for text in burst], ("assistant", reply.text))
        return reply

    async def _answer(self, chat: Hashable, state: ChatState, burst: list[str], latency: float,
                      last: float) -> None:
        """Generate the reply to ``burst`` (whose last message came at ``last``) and send its parts."""
        if self.rate is not None:
            wait = self.rate.check(str(chat))
            if wait:
                log.info("chat #%d: rate limit reached; a burst of %d messages not answered", state.number,
                         len(burst))
                return
        seed = self.seed
        if seed is not None:  # taken here, in the event loop: each reply its own
            self.seed += 1
        started = time.monotonic()
        try:
            reply = await asyncio.to_thread(self._reply, chat, burst, seed, state.contact)
        except Overloaded as exc:
            log.warning("chat #%d: no reply (%s)", state.number, type(exc).__name__)
            return
        generated = time.monotonic()
        took = generated - started
        self.generation_s = took if not self.answered else 0.8 * self.generation_s + 0.2 * took
        parts = reply.messages
        plan = self.player.plan(parts, latency)
        # the first part is due its latency after the contact's last message, each next one its gap
        # after the one before went out
        sent, late, first_due = last, 0.0, 0.0
        for i, part in enumerate(parts):
            due = max(sent + plan.delays[i], generated)  # never before the reply exists
            if i == 0:
                first_due = due - last
            await self._typing_until(chat, due, plan.typing[i])
            late = max(late, time.monotonic() - due)
            await self._deliver(chat, state, part)
            sent = time.monotonic()
        self.answered += 1
        log.info("chat #%d: answered a burst of %d message%s: %d part%s, generation %.3f s, delays %s s, "
                 "first due %.3f s after the last message, late %.0f ms%s", state.number, len(burst),
                 "" if len(burst) == 1 else "s", len(parts), "" if len(parts) == 1 else "s", took,
                 "/".join(f"{d:.3f}" for d in plan.delays), first_due, max(0.0, late) * 1000,
                 f": {reply.text!r}" if self.log_messages else "")

    async def _typing_until(self, chat: Hashable, due: float, typing: float) -> None:
        """Wait until ``due`` (monotonic), showing typing for its last ``typing`` seconds (at least once)."""
        start_typing = due - typing
        now = time.monotonic()
        if start_typing > now:
            await asyncio.sleep(start_typing - now)
        while True:
            await self.attempt(chat, self.transport.typing, chat, what="typing")
            left = due - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(TYPING_EVERY_S, left))
            if due - time.monotonic() <= 0:
                return

    async def _deliver(self, chat: Hashable, state: ChatState, text: str) -> None:
        if not await self.attempt(chat, self.transport.send, chat, text, what="message"):
            self.failures += 1
            log.warning("chat #%d: a message could not be sent after %d tries", state.number, SEND_TRIES)

    async def attempt(self, chat: Hashable, action, *args, what: str) -> bool:
        """``action(*args)`` with retries: the platform's retry-after, else exponential backoff."""
        backoff = BACKOFF_S[0]
        tries = SEND_TRIES if what == "message" else 2
        for attempt in range(tries):
            try:
                await action(*args)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified by the platform's transport
                wait = self.transport.retry_after(exc)
                if wait is None or attempt == tries - 1:
                    log.warning("sending %s failed (%s)%s", what, type(exc).__name__,
                                "" if wait is None else f" after {tries} tries")
                    return False
                wait = wait if wait > 0 else backoff
                backoff = min(BACKOFF_S[1], backoff * 2)
                log.info("sending %s: %s, retrying in %.1f s", what, type(exc).__name__, wait)
                await asyncio.sleep(wait)
        return False

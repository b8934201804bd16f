"""The person's timing, measured from their own chats: what `twin bot` plays back.

For each chat (its kept messages, as :func:`dataprocess.conversations.select_messages` groups
them) the messages are cut into turns the way training pairs are (a silence longer than
``session_gap_hours`` ends a conversation; messages of one side within ``reply_window_minutes``
of each other are one turn) and four things are measured:

- **reply latency**: the contact's last message of a turn -> my first message answering it
  (only replies within the reply window, as for training pairs);
- **burst gap**: between consecutive messages of one reply of mine (each `` | `` part);
- **contact gap**: between consecutive messages of a contact's turn (the bot's debounce);
- **contact burst**: a contact's turn from its first to its last message, before I answer;

plus the messages per reply and a typing speed (the fast end, 99th percentile, of characters per second of my
messages sent within a burst). Values go into bounded, seeded reservoir samples (memory stays
bounded at any history size) and are stored as quantiles at evenly spaced levels: in
``twin.toml`` ``[timing]`` (:class:`core.settings.Timing`) and in the data report, with a chart.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from operator import itemgetter

import numpy as np

from core.settings import Rules, Timing

from .conversations import Kept

QUANTILES = 41           # stored levels: 0, 2.5%, ..., 100%
SAMPLE_SIZE = 20_000     # values kept per measure (reservoir)
MEASURES = ("reply_latency_s", "burst_gap_s", "contact_gap_s", "contact_burst_s")
TYPING_BOUNDS = (3.0, 12.0)  # characters per second the measured typing speed is held within


class Reservoir:
    """A uniform sample of at most ``size`` values of a stream (Vitter's algorithm R), seeded."""

    def __init__(self, size: int = SAMPLE_SIZE, seed: int = 0) -> None:
        self.size, self.seen, self.values = size, 0, []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            at = self._rng.randrange(self.seen)
            if at < self.size:
                self.values[at] = value


def quantiles(values: Sequence[float], levels: int = QUANTILES) -> tuple[float, ...]:
    """``values``' quantiles at ``levels`` evenly spaced levels from 0 to 1 (empty for no values)."""
    if not len(values):
        return ()
    return tuple(round(float(q), 3) for q in np.quantile(np.asarray(values, dtype=float),
                                                           np.linspace(0.0, 1.0, levels)))


class TimingStats:
    """Fed one chat's kept messages at a time (:meth:`add`); :meth:`settings` and :meth:`report`
    give the measured distributions."""

    def __init__(self, rules: Rules, seed: int = 0) -> None:
        self.window = rules.reply_window_minutes * 60.0
        self.session_gap = rules.session_gap_hours * 3600.0
        self.samples = {name: Reservoir(seed=seed + i) for i, name in enumerate(MEASURES)}
        self.parts = Counter()
        self.typing = Reservoir(seed=seed + len(MEASURES))

    def add(self, messages: Sequence[Kept]) -> None:
        """Measure one chat: ``(timestamp, from_me, text)`` tuples (any order).

        One pass, holding only the turn in progress and the one before it (a chat with no long
        silence is one conversation of any length): whether a turn of mine is a reply is known
        when it starts, so each gap is counted as it comes."""
        samples, window, session_gap = self.samples, self.window, self.session_gap
        contact_gaps, my_gaps, latencies, bursts = (samples["contact_gap_s"], samples["burst_gap_s"],
                                                    samples["reply_latency_s"], samples["contact_burst_s"])
        side = None                  # the turn in progress: whose, when it started, its last message
        start = last = 0.0
        reply = False                # it is a reply of mine (counted: latency, parts, gaps)
        parts = 0
        prev_side, prev_start, prev_last = None, 0.0, 0.0  # the turn before it
        for stamp, from_me, text in sorted(messages, key=itemgetter(0)):
            t = stamp.timestamp()
            if side is not None and t - last > session_gap:  # a new conversation
                if reply:
                    self.parts[parts] += 1
                side = prev_side = None
                reply = False
            if side is not None and side == from_me and t - last <= window:  # the same turn goes on
                gap = t - last
                if not from_me:
                    contact_gaps.add(gap)
                elif reply:
                    my_gaps.add(gap)
                    if gap > 0:
                        self.typing.add(len(text) / gap)
                    parts += 1
                last = t
                continue
            if reply:
                self.parts[parts] += 1
            prev_side, prev_start, prev_last = side, start, last
            side, start, last, parts = from_me, t, t, 1
            reply = from_me and prev_side is False and t - prev_last <= window
            if reply:
                latencies.add(t - prev_last)
                bursts.add(prev_last - prev_start)
        if reply:
            self.parts[parts] += 1

    @property
    def replies(self) -> int:
        return sum(self.parts.values())

    def typing_speed(self) -> float:
        """The fast end (99th percentile) of my characters per second within a burst, bounded."""
        if len(self.typing.values) < 10:
            return Timing().typing_chars_per_s
        low, high = TYPING_BOUNDS
        return round(float(min(high, max(low, np.quantile(self.typing.values, 0.99)))), 2)

    def settings(self) -> Timing:
        """The ``[timing]`` section of twin.toml."""
        replies = self.replies
        return Timing(
            replies=replies,
            **{name: quantiles(self.samples[name].values) for name in MEASURES},
            parts_per_reply=round(sum(n * c for n, c in self.parts.items()) / replies, 3) if replies else 0.0,
            typing_chars_per_s=self.typing_speed())

    def report(self) -> dict:
        """The report's ``timing`` part: per measure its count, median, 10th and 90th percentile and
        quantiles; the messages-per-reply histogram."""
        out: dict = {"replies": self.replies, "typing_chars_per_s": self.typing_speed()}
        for name in MEASURES:
            values = self.samples[name].values
            q = quantiles(values)
            out[name] = {"count": self.samples[name].seen,
                         "median": q[len(q) // 2] if q else 0.0,
                         "p10": q[len(q) // 10] if q else 0.0,
                         "p90": q[len(q) - 1 - len(q) // 10] if q else 0.0,
                         "quantiles": list(q)}
        out["parts_per_reply"] = {str(n): c for n, c in sorted(self.parts.items())}
        return out


def write_timing_chart(timing: dict, save) -> None:
    """The report's timing chart (``timing.png``): each measure's distribution (cumulative, over a
    log time axis) and the messages per reply. ``save(fig, name)`` writes a figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    titles = {"reply_latency_s": "how long I take to answer", "burst_gap_s": "gap between my messages of a reply",
              "contact_gap_s": "gap between a contact's messages", "contact_burst_s": "a contact's burst before I answer"}
    for axis, name in zip(axes.flat, MEASURES):
        q = timing[name]["quantiles"]
        if q:
            axis.plot([max(v, 0.5) for v in q], np.linspace(0, 1, len(q)), color="#4a7bd0")
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())  # a narrow range labels its minor ticks over each other
        axis.set_title(f"{titles[name]} (n={timing[name]['count']})", fontsize=9)
        axis.set_xlabel("seconds")
        axis.set_ylabel("share at most")
    parts = timing["parts_per_reply"]
    axes.flat[4].bar(list(parts), list(parts.values()), color="#5aa469")
    axes.flat[4].set_title("messages per reply", fontsize=9)
    axes.flat[5].axis("off")
    axes.flat[5].text(0, 0.5, f"replies measured: {timing['replies']}\n"
                              f"typing speed bound: {timing['typing_chars_per_s']} chars/s", fontsize=10)
    save(fig, "timing.png")

"""Playing back the person's timing (``twin.toml`` ``[timing]``, measured by dataprocess.timing).

A :class:`TimingPlayer` draws from the stored distributions (inverse CDF over the quantiles, a
seeded generator) the delays of one reply:

- the **latency** of a reply, from the contact's last message to the first part (a reply
  latency draw, made when a burst starts; every further message of the burst restarts it);
- the **debounce**, the least quiet after a contact's last message before an answer (the median
  of the gaps between a contact's messages), should a latency draw be shorter;
- the **gap** before each later part (a burst-gap draw).

Every delay is at least the time to type its message at the person's typing speed (no
40-character message in 0.2 s) and at most ``max_delay``; ``speed`` scales them all (0.1: ten
times faster), ``instant`` makes them all 0. Without measured timing (a ``--model`` GGUF, an
older workspace) :data:`DEFAULT_TIMING` is played.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from core.settings import Timing

DEBOUNCE_LEVEL = 0.5
DEFAULT_TIMING = Timing(replies=0, reply_latency_s=(4.0, 8.0, 15.0, 30.0, 90.0),
                        burst_gap_s=(1.5, 3.0, 5.0, 8.0, 15.0), contact_gap_s=(1.0, 3.0, 5.0, 10.0, 30.0),
                        contact_burst_s=(0.0, 0.0, 5.0, 15.0, 60.0), parts_per_reply=1.5, typing_chars_per_s=7.0)


def measured(timing: Timing | None) -> bool:
    return bool(timing and timing.reply_latency_s and timing.burst_gap_s and timing.contact_gap_s)


def draw(quantiles, u: float) -> float:
    """The value at level ``u`` (0..1) of a distribution stored as evenly spaced quantiles."""
    q = np.asarray(quantiles, dtype=float)
    return float(np.interp(u, np.linspace(0.0, 1.0, len(q)), q))


@dataclass
class Plan:
    """One reply's delays in seconds (already scaled): ``delays[0]`` from the contact's last
    message to the first part, ``delays[i]`` from part i-1 to part i; ``typing[i]`` of each
    delay is shown as typing (its end)."""

    delays: list[float]
    typing: list[float]


class TimingPlayer:
    def __init__(self, timing: Timing | None = None, *, speed: float = 1.0, instant: bool = False,
                 max_delay: float = 600.0, seed: int | None = None) -> None:
        self.timing = timing if measured(timing) else DEFAULT_TIMING
        self.speed, self.instant, self.max_delay = speed, instant, max_delay
        self._rng = random.Random(seed)

    @property
    def from_data(self) -> bool:
        return self.timing is not DEFAULT_TIMING

    def debounce(self) -> float:
        """Seconds of quiet (scaled) after which a contact's burst is answered."""
        if self.instant:
            return 0.0
        return min(self.max_delay, draw(self.timing.contact_gap_s, DEBOUNCE_LEVEL)) * self.speed

    def typing_time(self, text: str) -> float:
        """Unscaled seconds to type ``text`` at the person's fast end."""
        return len(text) / max(0.5, self.timing.typing_chars_per_s)

    def latency(self) -> float:
        """A reply's latency (scaled): from the contact's last message to the first part."""
        if self.instant:
            return 0.0
        chosen = max(draw(self.timing.reply_latency_s, self._rng.random()),
                     draw(self.timing.contact_gap_s, DEBOUNCE_LEVEL))
        return min(self.max_delay, chosen) * self.speed

    def plan(self, parts: list[str], latency: float | None = None) -> Plan:
        """The delays of a reply made of ``parts``: ``latency`` (scaled; drawn when None), raised
        to the first part's typing time, then a gap before each later part."""
        if self.instant:
            return Plan([0.0] * len(parts), [0.0] * len(parts))
        delays, typing = [], []
        for i, part in enumerate(parts):
            typed = self.typing_time(part)
            if i == 0:
                chosen = (self.latency() if latency is None else latency) / self.speed
            else:
                chosen = draw(self.timing.burst_gap_s, self._rng.random())
            chosen = min(self.max_delay, max(chosen, typed))
            delays.append(chosen * self.speed)
            typing.append(min(chosen, max(typed, 1.0)) * self.speed)
        return Plan(delays, typing)

"""The data report: what was read, what each rule dropped, what the examples look like.

``Tally`` counts the raw message stream as it flows by (per source, contact, month and hour)
without holding it; ``build_report`` adds the rule counts and per-split figures; the charts
(PNG, matplotlib) go beside ``report.json`` in WORKSPACE/data.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from core.terminator import strip_terminator

from .message import Message

_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
REPLY_LENGTH_BINS = (0, 10, 20, 40, 80, 160, 320, 10_000)


class Tally:
    """Counts of the raw messages passing through :meth:`watch`.

    One counter keyed by (source, contact, kind, year, month, hour) is kept as the stream flows
    (one dict update per message: the stream can be millions long); the per-field counts are
    summed from it when asked for."""

    _BATCH = 65_536

    def __init__(self) -> None:
        self._counts: Counter = Counter()

    def _by(self, *fields: int) -> Counter:
        out: Counter = Counter()
        for key, n in self._counts.items():
            out[key[fields[0]] if len(fields) == 1 else tuple(key[f] for f in fields)] += n
        return out

    @property
    def by_source(self) -> Counter:
        return self._by(0)

    @property
    def by_contact(self) -> Counter:
        return self._by(1)

    @property
    def by_kind(self) -> Counter:
        return self._by(2)

    @property
    def by_month(self) -> Counter:
        return Counter({f"{year:04d}-{month:02d}": n for (year, month), n in self._by(3, 4).items()})

    @property
    def by_hour(self) -> Counter:
        return self._by(5)

    def watch(self, messages: Iterable[Message]) -> Iterator[Message]:
        # keys are counted a batch at a time: Counter.update over a list counts in C
        keys: list[tuple] = []
        try:
            for msg in messages:
                stamp = msg.timestamp
                keys.append((msg.source, msg.chat, msg.kind, stamp.year, stamp.month, stamp.hour))
                if len(keys) >= self._BATCH:
                    self._counts.update(keys)
                    keys.clear()
                yield msg
        finally:
            self._counts.update(keys)


def reply_text(example: dict) -> str:
    return strip_terminator(example["completion"][0]["content"])


def reply_chars(length_counts: Counter) -> dict:
    """The report's ``reply_chars`` (mean, median, max, histogram) from how many replies have
    each length: one step per distinct length, not per reply (a long history has hundreds of
    thousands of replies and a few hundred lengths). The median is :func:`statistics.median`'s:
    the middle length, or the mean of the two middle ones."""
    total = sum(length_counts.values())
    if not total:
        return {"mean": 0, "median": 0, "max": 0, "histogram": _histogram(length_counts)}
    ordered = sorted(length_counts.items())
    middle = []  # the lengths at positions (total - 1) // 2 and total // 2, counted from 0
    seen = 0
    for length, count in ordered:
        seen += count
        while len(middle) < 2 and seen > ((total - 1) // 2 if not middle else total // 2):
            middle.append(length)
        if len(middle) == 2:
            break
    median = middle[0] if total % 2 else (middle[0] + middle[1]) / 2
    mean = sum(length * count for length, count in ordered) / total
    return {"mean": round(mean, 1), "median": median, "max": ordered[-1][0], "histogram": _histogram(length_counts)}


def _histogram(length_counts: Counter) -> dict[str, int]:
    bins = REPLY_LENGTH_BINS
    labels = [f"{lo}-{hi - 1}" if hi < bins[-1] else f"{lo}+" for lo, hi in zip(bins, bins[1:])]
    highs = list(bins[1:-1]) + [float("inf")]  # the last bin is open ("320+")
    counts = dict.fromkeys(labels, 0)
    for n, count in length_counts.items():
        for label, low, high in zip(labels, bins, highs):
            if low <= n < high:
                counts[label] += count
                break
    return counts


def top_terms(texts: Iterable[str], n: int = 20) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Most common words and word pairs (bigrams, joined with a space) in ``texts``."""
    stats = ReplyStats()
    for text in texts:
        stats.add(text)
    return stats.words.most_common(n), _joined(stats.bigrams.most_common(n))


def _joined(pairs: list[tuple[tuple[str, str], int]]) -> list[tuple[str, int]]:
    return [(" ".join(pair), n) for pair, n in pairs]


class PrunedCounter(Counter):
    """A counter of a stream's terms in bounded memory: the most common ones, counted exactly.

    When it holds more than ``capacity`` distinct terms, every term seen at most ``floor``
    times is dropped and the floor goes up by one (lossy counting, Manku and Motwani 2002): a
    term that comes back later restarts from 0, so a count can only be low, and by at most the
    floor. Top terms of a long history are seen thousands of times, far above the floor.
    Without pruning, a history of years makes millions of distinct word pairs, and each new
    one costs more as the table outgrows the CPU's caches.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        super().__init__()
        self.capacity = capacity
        self.floor = 0

    def __reduce__(self):  # Counter's own would pass the counts as ``capacity``
        return _restore_pruned, (dict(self), self.capacity, self.floor)

    def add_all(self, terms: Iterable) -> None:
        self.update(terms)
        if len(self) > self.capacity:
            self.floor += 1
            for term in [term for term, n in self.items() if n <= self.floor]:
                del self[term]


def _restore_pruned(counts: dict, capacity: int, floor: int) -> PrunedCounter:
    counter = PrunedCounter(capacity)
    counter.update(counts)
    counter.floor = floor
    return counter


class ReplyStats:
    """My replies' lengths and words, fed one reply at a time (only counts are held: memory is
    bounded at any history size).

    Replies wait in a buffer and are counted a batch at a time: the batch is lowercased and cut
    into words by one regex pass over the replies joined with newlines, and each counter gets one
    update per batch (per reply, the calls' own overhead was most of the cost). A newline is the
    one token the pattern keeps besides words; it and every word pair across it are dropped when
    the figures are read, so a pair never spans two replies (or two lines of one)."""

    _BATCH = 8192  # buffered replies before they are counted
    _TOKEN_RE = re.compile(_WORD_RE.pattern + r"|\n", re.UNICODE)

    def __init__(self) -> None:
        self._length_counts: Counter = Counter()
        self._words = PrunedCounter()
        self._bigrams = PrunedCounter()
        self._buffer: list[str] = []

    def add(self, reply: str) -> None:
        self._buffer.append(reply)
        if len(self._buffer) >= self._BATCH:
            self._count()

    def _count(self) -> None:
        if not self._buffer:
            return
        self._length_counts.update(map(len, self._buffer))
        # a reply's own newlines are boundaries too: a word pair never spans lines
        tokens = self._TOKEN_RE.findall("\n".join(self._buffer).lower())
        self._buffer = []
        # counted whole, in C; the newline and the pairs across it are dropped when read
        self._words.add_all(tokens)
        self._bigrams.add_all(zip(tokens, tokens[1:]))

    def subtract(self, other: "ReplyStats") -> None:
        """Take ``other``'s replies out of these counts (replies counted here that turned out to
        be duplicates). A term pruned here may be left lower, never below zero."""
        self._settle()
        other._settle()
        for mine, theirs in ((self._length_counts, other._length_counts), (self._words, other._words),
                             (self._bigrams, other._bigrams)):
            for term, n in theirs.items():
                left = mine.get(term, 0) - n
                if left > 0:
                    mine[term] = left
                else:
                    mine.pop(term, None)

    def __getstate__(self) -> dict:
        self._settle()  # nothing waits in the buffer of a copy sent to another process
        return self.__dict__

    def _settle(self) -> None:
        """Count the buffer, then drop the line-break markers the batches counted."""
        self._count()
        self._words.pop("\n", None)
        for pair in [pair for pair in self._bigrams if "\n" in pair]:
            del self._bigrams[pair]

    @property
    def words(self) -> PrunedCounter:
        self._settle()
        return self._words

    @property
    def bigrams(self) -> PrunedCounter:
        self._settle()
        return self._bigrams

    @property
    def lengths(self) -> list[int]:
        return sorted(self.length_counts.elements())

    @property
    def length_counts(self) -> Counter:
        """How many replies have each length (in characters)."""
        self._count()
        return self._length_counts


def base_tokenizer_file(workspace) -> Path | None:
    """The tokenizer.json of the base the workspace's twin is (or will be) trained on, if it is
    on this machine: the trained adapter's own copy, else the base twin.toml records (found
    by name and fingerprint), else the embedded default's converted copy (what `twin train`
    uses without --base). None when none is here (nothing is converted or fetched for a report)."""
    from core import base_ref

    candidates = [workspace.adapter_dir]
    record = workspace.settings().train if workspace.settings_path.is_file() else None
    if record is not None and record.base:
        if record.base.lower() in base_ref.EMBEDDED_MODELS:
            candidates.append(base_ref.converted_dir(record.base))
        else:
            candidates.append(base_ref.locate_local(record.base, record.base_fingerprint))
    else:
        candidates.append(base_ref.converted_dir())
    return next((d / "tokenizer.json" for d in candidates if d is not None and (d / "tokenizer.json").is_file()),
                None)


def cached_tokenizer(workspace):
    """The tokenizer of :func:`base_tokenizer_file` (fast, no conversion), or None."""
    try:
        from tokenizers import Tokenizer

        path = base_tokenizer_file(workspace)
        return Tokenizer.from_file(str(path)) if path else None
    except Exception:  # noqa: BLE001 - the report falls back to word counts
        return None


def reply_figures(replies: ReplyStats, n_top: int = 20) -> dict:
    """The report's figures of the person's replies (``reply_chars``, ``top_words``,
    ``top_bigrams``): what the charts of REPLY_CHARTS are drawn from."""
    return {"reply_chars": reply_chars(replies.length_counts), "top_words": replies.words.most_common(n_top),
            "top_bigrams": _joined(replies.bigrams.most_common(n_top))}


def build_report(*, persona: str, inputs: list[str], rules: dict, stats: dict, tally: Tally,
                 examples: dict[str, int], tokens: dict[str, int], token_unit: str, replies: ReplyStats,
                 skipped: list, n_top: int = 20) -> dict:
    """The data report: ``examples`` and ``tokens`` per split (``token_unit`` "tokens" or
    "words"), ``replies`` over all of my chat replies."""
    figures = reply_figures(replies, n_top)
    return {
        "persona": persona,
        "inputs": inputs,
        "rules": rules,
        "read": {
            "by_source": dict(tally.by_source.most_common()),
            "by_contact": dict(tally.by_contact.most_common()),
            "by_kind": dict(tally.by_kind.most_common()),
        },
        "messages": stats,
        "skipped_records": len(skipped),
        "skipped_examples": [f"{f}:{line}: {why}" for f, line, why in skipped[:20]],
        "examples": dict(examples),
        "token_unit": token_unit,
        "tokens": dict(tokens),
        "reply_chars": figures["reply_chars"],
        "activity": activity(tally),
        "top_words": figures["top_words"],
        "top_bigrams": figures["top_bigrams"],
    }


def activity(tally: Tally) -> dict:
    """The report's ``activity``: messages read per month and per hour of day."""
    return {"by_month": dict(sorted(tally.by_month.items())),
            "by_hour": {str(h): tally.by_hour.get(h, 0) for h in range(24)}}


MAX_MONTH_LABELS = 36  # beyond it (a history of years) the month chart is labelled by year


def _month_ticks(months: list[str]) -> tuple[list[int], list[str]]:
    """Tick positions and labels for bars of ``months`` ("YYYY-MM", one bar each): every month
    for up to three years, else each year's first month shown as the year (hundreds of rotated
    labels are unreadable, and drawing them took most of the charts' time)."""
    if len(months) <= MAX_MONTH_LABELS:
        return list(range(len(months))), months
    ticks = [(i, month[:4]) for i, month in enumerate(months) if i == 0 or month[:4] != months[i - 1][:4]]
    return [i for i, _ in ticks], [label for _, label in ticks]


#: The data report's charts, in the order they are listed to the user.
CHARTS = ("activity.png", "reply_lengths.png", "top_words.png", "timing.png")
#: Those drawn from what is known once the messages are read (the activity) and the person's timing
#: is measured: ``twin process`` draws them on its second core while it makes the examples.
EARLY_CHARTS = ("activity.png", "timing.png")
#: Those of the person's replies, known only once duplicate examples are taken out.
REPLY_CHARTS = ("reply_lengths.png", "top_words.png")


def write_charts(report: dict, out_dir: Path, names: tuple[str, ...] = CHARTS) -> list[Path]:
    """PNG charts of the report into ``out_dir`` (those of ``names`` only: the report need hold
    only what they are drawn from); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.atomic import atomic_file

    charts = []

    def save(fig, name):
        path = out_dir / name
        with atomic_file(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)  # constrained layout: one draw, no "tight" re-draw
        plt.close(fig)
        charts.append(path)

    if "activity.png" in names:
        _activity_chart(plt, report["activity"], save)
    if "reply_lengths.png" in names:
        fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
        hist = report["reply_chars"]["histogram"]
        ax.bar(list(hist), list(hist.values()), color="#5aa469")
        ax.set_title("length of my replies (characters)")
        save(fig, "reply_lengths.png")
    if "top_words.png" in names:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
        for axis, terms, title in ((left, report["top_words"], "top words in my replies"),
                                   (right, report["top_bigrams"], "top word pairs")):
            labels = [t for t, _ in terms][::-1]
            axis.barh(labels, [c for _, c in terms][::-1], color="#8a5ad0")
            axis.set_title(title)
        save(fig, "top_words.png")
    if "timing.png" in names and report.get("timing"):
        from .timing import write_timing_chart

        write_timing_chart(report["timing"], save)
    return charts


def _activity_chart(plt, activity: dict, save) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), layout="constrained")
    months = activity["by_month"]
    top.bar(range(len(months)), list(months.values()), color="#4a7bd0")
    top.set_title("messages read per month")
    top.set_xticks(*_month_ticks(list(months)))
    top.tick_params(axis="x", labelrotation=90 if len(months) <= MAX_MONTH_LABELS else 0, labelsize=7)
    hours = activity["by_hour"]
    bottom.bar([int(h) for h in hours], list(hours.values()), color="#d08a4a")
    bottom.set_title("messages read by hour of day")
    bottom.set_xticks(range(24))
    save(fig, "activity.png")

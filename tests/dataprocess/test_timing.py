"""The person's timing measured by `twin process` (dataprocess.timing): the four distributions,
written to twin.toml [timing] and the report (with its chart)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from core.settings import Rules, Settings, Timing
from dataprocess.timing import TimingStats, quantiles

T0 = datetime(2024, 3, 1, 12, 0, 0)


def _at(seconds: float, from_me: bool, text: str = "hey there"):
    return (T0 + timedelta(seconds=seconds), from_me, text)


def test_the_four_measures_of_one_chat():
    chat = [
        _at(0, False), _at(10, False), _at(15, False),       # contact burst: 15 s, gaps 10 and 5
        _at(75, True), _at(85, True, "x" * 40),              # latency 60 s, my gap 10 s, 2 parts
        _at(4000, False), _at(4000 + 3600, True),            # a late answer (> 30 min): not a reply
        _at(30 * 3600, False), _at(30 * 3600 + 20, True),    # next day: latency 20 s, 1 part
    ]
    stats = TimingStats(Rules())
    stats.add(list(reversed(chat)))  # any order
    timing = stats.settings()
    assert timing.replies == 2
    assert (timing.reply_latency_s[0], timing.reply_latency_s[-1]) == (20.0, 60.0)
    assert timing.burst_gap_s == (10.0,) * len(timing.burst_gap_s)
    assert (min(timing.contact_gap_s), max(timing.contact_gap_s)) == (5.0, 10.0)
    assert (timing.contact_burst_s[0], timing.contact_burst_s[-1]) == (0.0, 15.0)
    assert timing.parts_per_reply == 1.5
    report = stats.report()
    assert report["parts_per_reply"] == {"1": 1, "2": 1}
    assert report["reply_latency_s"]["count"] == 2


def test_quantiles_and_bounded_sample():
    assert quantiles([]) == ()
    assert quantiles(range(101), levels=5) == (0.0, 25.0, 50.0, 75.0, 100.0)
    stats = TimingStats(Rules())
    stats.add([_at(i * 2.0, i % 3 != 0) for i in range(200_000)])
    assert len(stats.samples["burst_gap_s"].values) <= 20_000 < stats.samples["burst_gap_s"].seen


def test_timing_round_trips_through_twin_toml():
    settings = Settings(timing=Timing(replies=3, reply_latency_s=(1.0, 2.5), parts_per_reply=2.0))
    again = Settings.from_toml(settings.to_toml())
    assert again.timing == settings.timing
    assert Settings.from_toml(Settings().to_toml()).timing is None  # an older workspace: none


def test_process_writes_timing(sample_workspace):
    settings = Settings.load(sample_workspace / "twin.toml")
    assert settings.timing is not None and settings.timing.replies > 100
    assert 1.0 < settings.timing.parts_per_reply < 5.0
    assert list(settings.timing.reply_latency_s) == sorted(settings.timing.reply_latency_s)
    report = json.loads((sample_workspace / "data" / "report.json").read_text())
    assert report["timing"]["replies"] == settings.timing.replies
    assert (sample_workspace / "data" / "timing.png").stat().st_size > 1000

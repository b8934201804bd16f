"""Write a small persona: the sample's Maya texting only her three closest contacts, ~120 reply pairs.

Many people have only a few hundred messages with their top contacts; the default `twin train`
must work for them too. This is the same invented person as ``make_sample.py`` (same phrases,
same habits: lowercase, `` | `` bursts, "lowkey", "bartaco?"), built with its generator and a
seed of its own, but with far fewer conversations and no group chats, so ``twin process`` makes
about 120 reply pairs of it. Standard library only; byte-for-byte the same on every run.

    .venv/bin/python samples/make_small_persona.py /tmp/small     # -> /tmp/small/messages.csv
    .venv/bin/twin process /tmp/small/messages.csv --workspace /tmp/small-ws
"""
from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_sample as sample  # noqa: E402 - the sample's own generator, from this directory

SEED = 120
SESSIONS = {"Priya Natarajan": 22, "Jordan Reyes": 17, "Elsa Lindqvist": 15}


def build_rows(seed: int = SEED, scale: int = 1) -> list[list[str]]:
    """The persona's messages; another ``seed`` gives other conversations of the same person,
    ``scale`` times as many of them (bench/bench_small_heldout.py's held-out replies)."""
    rng = random.Random(seed)
    builder = sample.Builder(rng)
    for name, _handle, _weight, overrides in sample.CONTACTS:
        if name not in SESSIONS:
            continue
        topics = dict(sample.GENERIC)
        topics.update(overrides)
        cursor = sample.START
        for start in sample.session_starts(rng, SESSIONS[name] * scale):
            cursor = builder.one_on_one(max(start, cursor + timedelta(hours=4)), name, topics)
    builder.rows.sort(key=lambda r: (r[0], r[1]))
    return [row for _when, _seq, row in builder.rows]


def generate(out_dir: Path | str, seed: int = SEED, scale: int = 1) -> Path:
    """Write ``messages.csv`` under ``out_dir``; returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "messages.csv"
    path.write_bytes(sample.csv_text(build_rows(seed, scale)).encode("utf-8"))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_small_persona.py OUT_DIR")
    print(f"wrote {generate(sys.argv[1])}")

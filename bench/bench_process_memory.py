"""Benchmark: what the knowledge base's retrieval costs `twin process`, and how that cost grows.

    .venv/bin/python bench/bench_process_memory.py [--scales 1 10] [--repeat 2]

A history ``N`` times the bundled sample is written: the sample's iMessage CSV repeated ``N``
times, each copy moved later by the sample's span plus a month, and each of its messages given
the copy's own last word (`` c3``), so that no copy's messages are the same texts as another's
(the embedding cache sees new texts; the data stage's deduplication keeps them all). Then, for
each history, two child processes run, each timed by itself with its peak RSS from
``os.wait4``, alternated ``--repeat`` times (medians reported):

- ``facts on``: ``twin process FILE --facts samples/facts.toml`` (BM25 candidates ranked by
  meaning for every incoming turn that shares a word with a fact: the default);
- ``facts off``: the same with ``--facts-per-prompt 0`` (no retrieval, no embedding model).

Printed side by side: seconds and peak RSS of each, the ratio on/off at each size, and the ratio
of the largest size to the smallest for each (10x the history should cost about 10x the time
beyond the fixed start-up; memory should stay bounded). The embedding model's load (importing
sentence-transformers and torch, ~10 s on 2 cores) is paid once a run, whatever the size, so the
printed *marginal* cost (on minus off) per 1,000 examples is the figure that should hold steady.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_process_scaling import median_run, run  # noqa: E402

SAMPLE = ROOT / "samples" / "imessage" / "messages.csv"
FACTS = ROOT / "samples" / "facts.toml"
STAMP = "%Y-%m-%d %H:%M:%S"


def readable(when: datetime) -> str:
    """iMessage-exporter's 'Readable Time' ("Oct 7, 2022 at 12:17:00 PM")."""
    return f"{when:%b} {when.day}, {when.year} at {when.strftime('%I:%M:%S %p').lstrip('0')}"


def write_history(path: Path, copies: int) -> int:
    """The sample ``copies`` times over (see the module docstring); returns the rows written."""
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    when = header.index("Timestamp")
    shown = header.index("Readable Time")
    text = header.index("Message")
    stamps = [datetime.strptime(row[when], STAMP) for row in rows]
    span = max(stamps) - min(stamps) + timedelta(days=30)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        for copy in range(copies):
            for row, stamp in zip(rows, stamps):
                moved = stamp + copy * span
                row = list(row)
                row[when], row[shown] = moved.strftime(STAMP), readable(moved)
                if row[text] and copy:
                    row[text] = f"{row[text]} c{copy}"
                out.writerow(row)
                written += 1
    return written


def examples(workspace: Path) -> int:
    return sum(sum(1 for _ in open(workspace / "data" / f"{split}.jsonl", encoding="utf-8"))
               for split in ("train", "valid", "test"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="history sizes, in copies of the sample")
    ap.add_argument("--repeat", type=int, default=2, help="on/off pairs per size (medians are reported)")
    args = ap.parse_args()
    twin = Path(sys.executable).with_name("twin")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TQDM_DISABLE="1", MPLBACKEND="Agg", TWIN_CACHE=str(Path(tmp) / "empty-cache"))
        for scale in args.scales:
            path = Path(tmp) / f"messages-x{scale}.csv"
            lines = write_history(path, scale)
            runs = {"on": [], "off": []}
            for attempt in range(args.repeat):  # alternated, so both meet the same machine
                for mode, extra in (("on", []), ("off", ["--facts-per-prompt", "0"])):
                    workspace = Path(tmp) / f"ws-{scale}-{mode}-{attempt}"
                    runs[mode].append(run([str(twin), "process", str(path), "--workspace", str(workspace),
                                           "--facts", str(FACTS), "--since", "2020-01-01", *extra], env))
            on, off = median_run(runs["on"]), median_run(runs["off"])
            count = examples(workspace)
            rows.append((scale, lines, count, on, off))
            print(f"x{scale:<4} {lines:>8,} rows {count:>7,} examples: facts on {on['all']} s {on['rss_mb']:.0f} MB | "
                  f"off {off['all']} s {off['rss_mb']:.0f} MB", flush=True)

    print(f"\nmedians of {args.repeat} alternated runs each")
    print(f"{'history':<9}{'rows':>9}{'examples':>10}{'on s':>8}{'off s':>8}{'on/off':>8}"
          f"{'on MB':>8}{'off MB':>8}{'(on-off) s per 1k examples':>28}")
    for scale, lines, count, on, off in rows:
        marginal = (on["seconds"] - off["seconds"]) / count * 1000
        print(f"x{scale:<8}{lines:>9,}{count:>10,}{on['seconds']:>8.1f}{off['seconds']:>8.1f}"
              f"{on['seconds'] / off['seconds']:>7.2f}x{on['rss_mb']:>8.0f}{off['rss_mb']:>8.0f}{marginal:>28.2f}")
    if len(rows) > 1:
        small, big = rows[0], rows[-1]
        factor = big[0] / small[0]
        grow_on = big[3]["seconds"] / small[3]["seconds"]
        grow_off = big[4]["seconds"] / small[4]["seconds"]
        extra_small = big[3]["seconds"] - big[4]["seconds"], small[3]["seconds"] - small[4]["seconds"]
        print(f"\n{factor:g}x the history: facts on {grow_on:.1f}x the time, off {grow_off:.1f}x "
              f"(goal about {factor:g}x or less: {'met' if grow_on <= factor * 1.1 else 'NOT met'}); "
              f"the retrieval's own cost (on - off) {extra_small[1]:.1f} s -> {extra_small[0]:.1f} s "
              f"({extra_small[0] / max(extra_small[1], 1e-9):.1f}x); peak RSS on {small[3]['rss_mb']:.0f} -> "
              f"{big[3]['rss_mb']:.0f} MB ({big[3]['rss_mb'] / small[3]['rss_mb']:.2f}x: bounded when ~1x)")


if __name__ == "__main__":
    main()

"""Benchmark: `twin process` end to end vs the WhatsApp reader alone, and how both scale.

    .venv/bin/python bench/bench_process_scaling.py [--lines 1000000] [--repeat 3] [--tokenizer]

Two WhatsApp exports of ``--lines`` lines are generated (bench_whatsapp_parse's generator, two
participants, a message every 5 s to 15 min, ~0.1% system lines): a *gapless* one (never a 6-hour silence: one
endless conversation, as in a busy chat) and one with *nightly gaps* (nothing from 23:00 to
08:00, so each day is a conversation). Each is also generated at a tenth of the lines. For every
file two child processes run, each timed by itself, with its peak RSS read from ``os.wait4``:

- ``reader``: ``sum(1 for _ in read_export(file, me=...))``;
- ``process``: ``twin process file --workspace TMP --me ... --since 2020-01-01`` (the CLI, charts
  included).

The reader's seconds are its own parse (timed inside the child, imports excluded); the
process's are the whole command's wall time, start-up and charts included. Both children's CPU
time (user + system, from ``os.wait4``: start-up included on both sides) is printed too, with its
ratio: on a shared machine whose other tenants take CPU away, wall times of one run vary by
+-20% while CPU times hold.

Each file's reader and process run ``--repeat`` times, alternated; the medians are reported
(single runs on a shared machine vary by +-20%), the ratio as the median of the paired ratios.
Printed side by side: seconds, peak RSS, the ratio process/reader (goal <= 3x at the full size),
the ratio of the full size to the tenth (goal <= 11x for 10x the lines: linear cost), and the
peak RSS goal (< 500 MB at 1,000,000 lines). The data report counts tokens with the default
model's tokenizer when it is in twin's cache; by default the bench points ``TWIN_CACHE`` at an
empty folder so that the figures measure the data stage itself (``--tokenizer`` keeps the cache).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_whatsapp_parse import CONTACT, ME, generate  # noqa: E402


def child_reader(path: str) -> None:
    from dataprocess.readers import read_export

    start = time.perf_counter()
    count = sum(1 for _ in read_export(path, me=ME))
    print(json.dumps({"seconds": time.perf_counter() - start, "messages": count}))


def run(argv: list[str], env: dict) -> dict:
    """Run a child; its wall time, peak RSS and (for the reader) its own timing."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{output[-2000:]}")
    result = {"seconds": wall, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
              "rss_mb": usage.ru_maxrss / 1024, "output": output}
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if last.startswith("{"):
        result.update(json.loads(last))
    return result


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time, with the medians of wall and CPU time and the peak RSS."""
    by_wall = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(by_wall[len(by_wall) // 2])
    chosen["cpu"] = statistics.median(r["cpu"] for r in runs)
    chosen["rss_mb"] = max(r["rss_mb"] for r in runs)
    chosen["all"] = [round(r["seconds"], 1) for r in runs]
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="reader/process pairs per file (medians are reported)")
    ap.add_argument("--tokenizer", action="store_true", help="let the report count tokens with the cached tokenizer")
    ap.add_argument("--child-reader", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_reader:
        child_reader(args.child_reader)
        return
    twin = Path(sys.executable).with_name("twin")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TQDM_DISABLE="1", MPLBACKEND="Agg")
        if not args.tokenizer:
            env["TWIN_CACHE"] = str(Path(tmp) / "empty-cache")
        for kind in ("gapless", "nightly gaps"):
            for lines in (args.lines // 10, args.lines):
                path = Path(tmp) / f"WhatsApp Chat with {CONTACT} {kind} {lines}.txt"
                generate(path, lines, nightly=kind != "gapless")
                readers, processes, ratios = [], [], []
                for attempt in range(args.repeat):  # alternated, so both meet the same machine
                    readers.append(run([sys.executable, __file__, "--child-reader", str(path)], env))
                    workspace = Path(tmp) / f"ws-{kind}-{lines}-{attempt}"
                    processes.append(run([str(twin), "process", str(path), "--workspace", str(workspace),
                                          "--me", ME, "--since", "2020-01-01"], env))
                    ratios.append(processes[-1]["seconds"] / readers[-1]["seconds"])
                reader, process = median_run(readers), median_run(processes)
                process["ratio"] = statistics.median(ratios)
                counts = {s: sum(1 for _ in open(workspace / "data" / f"{s}.jsonl", encoding="utf-8"))
                          for s in ("train", "valid", "test")}
                rows.append((kind, lines, reader, process, counts))
                path.unlink()
                print(f"{kind:>13} {lines:>10,} lines: reader {reader['all']} s {reader['rss_mb']:5.0f} MB | "
                      f"twin process {process['all']} s {process['rss_mb']:5.0f} MB | "
                      f"paired ratios {[round(r, 2) for r in ratios]} | "
                      f"examples {counts['train']:,}/{counts['valid']:,}/{counts['test']:,}", flush=True)

    print(f"\nmedians of {args.repeat} alternated runs each")
    print(f"{'file':<14}{'lines':>11}{'reader s':>10}{'process s':>11}{'process/reader':>16}"
          f"{'CPU s r/p':>14}{'CPU ratio':>11}{'process MB':>12}{'train/valid/test':>22}")
    for kind, lines, reader, process, counts in rows:
        split = f"{counts['train']:,}/{counts['valid']:,}/{counts['test']:,}"
        cpu = f"{reader['cpu']:.1f}/{process['cpu']:.1f}"
        print(f"{kind:<14}{lines:>11,}{reader['seconds']:>10.1f}{process['seconds']:>11.1f}{process['ratio']:>15.1f}x"
              f"{cpu:>14}{process['cpu'] / reader['cpu']:>10.1f}x{process['rss_mb']:>12.0f}{split:>22}")
    print()
    for kind in ("gapless", "nightly gaps"):
        small, big = [r for r in rows if r[0] == kind]
        scale_reader = big[2]["seconds"] / small[2]["seconds"]
        scale_process = big[3]["seconds"] / small[3]["seconds"]
        scale_cpu = big[3]["cpu"] / small[3]["cpu"]
        ratio, cpu_ratio = big[3]["ratio"], big[3]["cpu"] / big[2]["cpu"]
        print(f"{kind}: 10x the lines costs {scale_process:.1f}x the time in twin process (CPU {scale_cpu:.1f}x; "
              f"goal <= 11x: {'met' if scale_process <= 11 else 'NOT met'}), {scale_reader:.1f}x in the reader; "
              f"process/reader at {big[1]:,} lines {ratio:.1f}x wall (median of paired runs), {cpu_ratio:.1f}x CPU "
              f"(goal <= 3x: {'met' if ratio <= 3 else 'NOT met'}); "
              f"peak RSS {big[3]['rss_mb']:.0f} MB (goal < 500 MB: {'met' if big[3]['rss_mb'] < 500 else 'NOT met'}); "
              f"valid and test non-empty: {'yes' if big[4]['valid'] and big[4]['test'] else 'NO'}")


if __name__ == "__main__":
    main()

"""Benchmark: `twin process` end to end vs the WhatsApp reader alone, and how both scale.

    .venv/bin/python bench/bench_process_scaling.py [--lines 1000000] [--tokenizer]

Two WhatsApp exports of ``--lines`` lines are generated (bench_whatsapp_parse's generator, two
participants, a message every 5 s to 15 min, ~0.1% system lines): a *gapless* one (never a 6-hour silence: one
endless conversation, as in a busy chat) and one with *nightly gaps* (nothing from 23:00 to
08:00, so each day is a conversation). Each is also generated at a tenth of the lines. For every
file two child processes run, each timed by itself, with its peak RSS read from ``os.wait4``:

- ``reader``: ``sum(1 for _ in read_export(file, me=...))``;
- ``process``: ``twin process file --workspace TMP --me ... --since 2020-01-01`` (the CLI, charts
  included).

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
    result = {"seconds": wall, "rss_mb": usage.ru_maxrss / 1024, "output": output}
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if last.startswith("{"):
        result.update(json.loads(last))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
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
                reader = run([sys.executable, __file__, "--child-reader", str(path)], env)
                workspace = Path(tmp) / f"ws-{kind}-{lines}"
                process = run([str(twin), "process", str(path), "--workspace", str(workspace), "--me", ME,
                               "--since", "2020-01-01"], env)
                counts = {s: sum(1 for _ in open(workspace / "data" / f"{s}.jsonl", encoding="utf-8"))
                          for s in ("train", "valid", "test")}
                rows.append((kind, lines, reader, process, counts))
                path.unlink()
                print(f"{kind:>13} {lines:>10,} lines: reader {reader['seconds']:7.1f} s {reader['rss_mb']:7.0f} MB | "
                      f"twin process {process['seconds']:7.1f} s {process['rss_mb']:7.0f} MB | "
                      f"examples {counts['train']:,}/{counts['valid']:,}/{counts['test']:,}", flush=True)

    print(f"\n{'file':<14}{'lines':>11}{'reader s':>10}{'process s':>11}{'process/reader':>16}"
          f"{'process MB':>12}{'train/valid/test':>22}")
    for kind, lines, reader, process, counts in rows:
        ratio = process["seconds"] / reader["seconds"]
        split = f"{counts['train']:,}/{counts['valid']:,}/{counts['test']:,}"
        print(f"{kind:<14}{lines:>11,}{reader['seconds']:>10.1f}{process['seconds']:>11.1f}{ratio:>15.1f}x"
              f"{process['rss_mb']:>12.0f}{split:>22}")
    print()
    for kind in ("gapless", "nightly gaps"):
        small, big = [r for r in rows if r[0] == kind]
        scale_reader = big[2]["seconds"] / small[2]["seconds"]
        scale_process = big[3]["seconds"] / small[3]["seconds"]
        ratio = big[3]["seconds"] / big[2]["seconds"]
        print(f"{kind}: 10x the lines costs {scale_process:.1f}x the time in twin process (goal <= 11x: "
              f"{'met' if scale_process <= 11 else 'NOT met'}), {scale_reader:.1f}x in the reader; "
              f"process/reader at {big[1]:,} lines {ratio:.1f}x (goal <= 3x: {'met' if ratio <= 3 else 'NOT met'}); "
              f"peak RSS {big[3]['rss_mb']:.0f} MB (goal < 500 MB: {'met' if big[3]['rss_mb'] < 500 else 'NOT met'}); "
              f"valid and test non-empty: {'yes' if big[4]['valid'] and big[4]['test'] else 'NO'}")


if __name__ == "__main__":
    main()

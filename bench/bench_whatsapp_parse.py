"""Benchmark: parse a generated 1,000,000-line WhatsApp export with twin's reader and chat-miner's.

    .venv/bin/python bench/bench_whatsapp_parse.py [--lines 1000000] [--repeat 3] [--keep DIR]

The export (Android layout, day-first dates, 24-hour clock, two participants, ~6% multi-line
messages, ~4% ``<Media omitted>``, a few system lines) is generated deterministically into a
temporary folder. Each parser runs in its own child process; the child times the parse itself
(imports excluded) and the parent reads the child's peak RSS from ``os.wait4``. chat-miner
(``pip install chat-miner``) is not a project dependency: when it is missing the script says so
and reports twin's reader alone.

Note on counts: twin's reader yields every record (text, media and system); chat-miner keeps
messages with an author and drops system lines, so its count is slightly lower.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ME, CONTACT = "Maya Cohen", "Alex"
WORDS = ("ok yeah sure lol haha see you soon tonight tomorrow coffee climbing gym work later maybe "
         "what time where are you I'm on my way sounds good nice cool thanks привет как дела שלום "
         "mai gặp nhé 😂 👍 dinner movie").split()


def generate(path: Path, lines: int, seed: int = 0, nightly: bool = False) -> None:
    """Write an Android-layout export of exactly ``lines`` lines; ``nightly``: silent from
    23:00 to 08:00 (each day a conversation), else never a 6-hour silence."""
    rng = random.Random(seed)
    now = datetime(2023, 1, 1, 8, 0)
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        buf = []
        while written < lines:
            now += timedelta(seconds=rng.randint(5, 900))
            if nightly and (now.hour >= 23 or now.hour < 8):
                now = (now + timedelta(days=1 if now.hour >= 23 else 0)).replace(hour=8, minute=rng.randint(0, 30))
            head = f"{now.day:02d}/{now.month:02d}/{now.year}, {now.hour:02d}:{now.minute:02d} - "
            roll = rng.random()
            if roll < 0.001:
                buf.append(f"{head}Your security code with {CONTACT} changed. Tap to learn more.\n")
                written += 1
                continue
            name = ME if rng.random() < 0.5 else CONTACT
            if roll < 0.04:
                buf.append(f"{head}{name}: <Media omitted>\n")
                written += 1
                continue
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
            buf.append(f"{head}{name}: {text}\n")
            written += 1
            if roll > 0.94:
                for _ in range(min(rng.randint(1, 3), lines - written)):
                    buf.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))) + "\n")
                    written += 1
            if len(buf) > 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))


def child(parser: str, path: str) -> None:
    """Run one parser over ``path`` and print {"messages", "seconds"} as JSON."""
    if parser == "twin":
        sys.path.insert(0, str(ROOT))
        from dataprocess.readers import read_export

        start = time.perf_counter()
        count = sum(1 for _ in read_export(path, me=ME))
        seconds = time.perf_counter() - start
    else:
        import logging

        from chatminer.chatparsers import WhatsAppParser

        logging.disable(logging.CRITICAL)
        start = time.perf_counter()
        parser_ = WhatsAppParser(path)
        parser_.parse_file()
        count = len(parser_.parsed_messages._parsed_messages)
        seconds = time.perf_counter() - start
    print(json.dumps({"messages": count, "seconds": seconds}))


def run_child(parser: str, path: Path) -> dict:
    env = dict(os.environ, TQDM_DISABLE="1")
    proc = subprocess.Popen([sys.executable, __file__, "--child", parser, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{parser} parser failed (exit {proc.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    return result


def have_chat_miner() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import chatminer.chatparsers"], capture_output=True)
    return probe.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the generated export into this folder and keep it")
    ap.add_argument("--repeat", type=int, default=3, help="alternated runs of each parser (medians are reported)")
    ap.add_argument("--child", nargs=2, metavar=("PARSER", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"WhatsApp Chat with {CONTACT}.txt"
        start = time.perf_counter()
        generate(path, args.lines)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.lines:,} lines ({size_mb:.1f} MB) in {time.perf_counter() - start:.1f} s: {path}")

        # alternated runs, medians reported: one run on a shared machine varies by +-20%
        names = {"twin": "twin whatsapp reader"}
        if have_chat_miner():
            names["chat-miner"] = "chat-miner WhatsAppParser"
        else:
            print("NOTE: chat-miner is not installed (pip install chat-miner); reporting twin's reader only")
        runs: dict[str, list[dict]] = {name: [] for name in names.values()}
        for _ in range(args.repeat):
            for parser, name in names.items():
                runs[name].append(run_child(parser, path))
        results = {}
        for name, done in runs.items():
            seconds = sorted(r["seconds"] for r in done)
            results[name] = {**done[0], "seconds": statistics.median(seconds),
                             "rss_mb": max(r["rss_mb"] for r in done)}
            print(f"{name}: {[round(x, 2) for x in seconds]} s")

    print(f"\n{'parser':<28}{'messages':>12}{'seconds':>10}{'messages/s':>14}{'peak RSS MB':>14}")
    for name, r in results.items():
        rate = r["messages"] / r["seconds"]
        r["rate"] = rate
        print(f"{name:<28}{r['messages']:>12,}{r['seconds']:>10.2f}{rate:>14,.0f}{r['rss_mb']:>14.1f}")
    if len(results) == 2:
        ours, theirs = results.values()
        print(f"\nratio twin / chat-miner: throughput {ours['rate'] / theirs['rate']:.1f}x, "
              f"peak RSS {ours['rss_mb'] / theirs['rss_mb']:.2f}x")
    ours = results["twin whatsapp reader"]
    print(f"goal: peak RSS < 500 MB -> {'met' if ours['rss_mb'] < 500 else 'NOT met'}"
          + (f"; >= 5x chat-miner's throughput -> {'met' if ours['rate'] >= 5 * theirs['rate'] else 'NOT met'}"
             if len(results) == 2 else ""))


if __name__ == "__main__":
    main()

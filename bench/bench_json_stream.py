"""Benchmark: peak memory reading a large Telegram JSON export, streamed vs loaded whole.

    .venv/bin/python bench/bench_json_stream.py [--messages 1000000]

A one-chat Telegram export (``result.json``, personal chat, text arrays with entities, like
Telegram Desktop writes) of ``--messages`` messages is generated, then read in two child
processes, each timed by itself, with its peak RSS read from ``os.wait4``:

- ``twin telegram reader``: ``read_export`` (ijson, two streamed passes);
- ``json.load baseline``: what the reader did before, the whole document in memory.

Goal: the reader's peak RSS stays flat (bounded by one message, not by the file).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def generate(path: Path, messages: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = "ok yeah sure lol see you soon tonight coffee привет как дела שלום 😂".split()
    stamp = 1_700_000_000
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"name": "Alex", "type": "personal_chat", "id": 5001, "messages": [\n')
        for index in range(messages):
            stamp += rng.randint(5, 900)
            mine = rng.random() < 0.5
            text = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 10))),
                    {"type": "bold", "text": rng.choice(words)}]
            record = {"id": index, "type": "message", "date": "2023-11-14T22:13:20", "date_unixtime": str(stamp),
                      "from": "Maya" if mine else "Alex", "from_id": "user7000" if mine else "user5001",
                      "text": text, "text_entities": [{"type": "plain", "text": text[0]}, text[1]]}
            out.write(("," if index else "") + json.dumps(record, ensure_ascii=False) + "\n")
        out.write("]}\n")


def child(kind: str, path: str) -> None:
    start = time.perf_counter()
    if kind == "twin":
        from dataprocess.readers import read_export

        count = sum(1 for _ in read_export(path))
    else:
        with open(path, encoding="utf-8") as handle:
            count = len(json.load(handle)["messages"])
    print(json.dumps({"messages": count, "seconds": time.perf_counter() - start}))


def run(kind: str, path: Path) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(path)], stdout=subprocess.PIPE, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{kind} failed")
    return {**json.loads(output.strip().splitlines()[-1]), "rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        generate(path, args.messages)
        print(f"generated {args.messages:,} messages ({path.stat().st_size / 1e6:.0f} MB)")
        results = {"twin telegram reader": run("twin", path), "json.load baseline": run("json", path)}
    print(f"\n{'reader':<24}{'messages':>12}{'seconds':>10}{'peak RSS MB':>14}")
    for name, r in results.items():
        print(f"{name:<24}{r['messages']:>12,}{r['seconds']:>10.1f}{r['rss_mb']:>14.0f}")
    ours, whole = results.values()
    print(f"\npeak RSS twin / json.load: {ours['rss_mb'] / whole['rss_mb']:.2f}x")


if __name__ == "__main__":
    main()

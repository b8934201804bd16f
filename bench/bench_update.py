"""`twin update` with 10% new messages vs a full `twin process` + `twin train` on everything.

On the bundled sample (samples/imessage/messages.csv): the "old" export is its first 90% of
messages; the new export is the whole file (it overlaps the old one, as a fresh export of the
same phone does). The embedded default model (SmolLM2-135M-Instruct), CPU, the `twin` commands
run as a user runs them (each its own process, start-up included):

1. the existing twin: `twin process old.csv --facts samples/facts.toml` + `twin train` (workspace A; timed for reference);
2. the update: `twin update -w A messages.csv --no-eval --no-export` (timed: reading, dedupe,
   staging, training from A's adapter on new + replayed examples);
3. the full retrain: `twin process messages.csv` (workspace C, timed) + `twin train` from scratch
   on the same merged data the update ended with (workspace B, a copy of A's data; timed);
4. `twin eval` of A (updated) and B (retrained) on the same test split (A's merged one) with the
   same decoding (`--keep-sampling --no-base --runtime transformers`): the classifier accuracy of
   each (0.5: the classifier cannot tell the twin's replies from the person's).

Schedules: each command's own default, times ``--scale`` (so it runs in minutes on CPU): `twin
train`'s default schedule for the full data (trainer.schedule: at least 225 steps) and `twin
update`'s (2 epochs over new + replayed examples), both at ``--lr`` (the demo's 1e-3). The time
ratio is (update) / (process + train); the goal is <= 30%, and the classifier accuracies within 0.02.

    .venv/bin/python bench/bench_update.py [--scale 0.25] [--lr 1e-3] [--keep DIR]
    .venv/bin/python bench/bench_update.py --index-only [--messages 1000000]

``--index-only`` measures the index of processed messages (dataprocess.seen) alone, at a
million messages: fingerprinting them all (as `twin process` does), saving and loading the
file, and passing a second export of the same million plus 10% new through it (`twin update`),
beside a Python set of the same fingerprints (memory, time) as the baseline.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "samples" / "imessage" / "messages.csv"
FACTS = ROOT / "samples" / "facts.toml"
TWIN = [sys.executable, "-c", "import twin_cli; twin_cli.main()"]


def twin(*args, quiet=True) -> float:
    """Run one `twin` command; its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(TWIN + [str(a) for a in args], cwd=ROOT, capture_output=quiet, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"twin {' '.join(map(str, args))} failed ({done.returncode}):\n{(done.stdout or '')[-2000:]}"
                 f"{(done.stderr or '')[-2000:]}")
    return seconds


def classifier(ws: Path) -> float:
    return json.loads((ws / "eval" / "report.json").read_text())["classifier_accuracy"]["twin"]


def index_bench(count: int) -> None:
    import resource
    from datetime import datetime, timedelta

    from dataprocess.message import Message
    from dataprocess.seen import NewOnly, Recorder, SeenIndex, fingerprint

    start = datetime(2023, 1, 1)
    messages = [Message("Alex", f"message number {i} lol", start + timedelta(seconds=i), "Alex", i % 2 == 0)
                for i in range(count)]
    more = messages + [m._replace(text=m.text + " new") for m in messages[:count // 10]]
    t0 = time.perf_counter()
    recorder = Recorder()
    for _ in recorder.watch(messages):
        pass
    index = recorder.index()
    t_build = time.perf_counter() - t0
    path = Path(tempfile.mkdtemp()) / "seen.npy"
    t0 = time.perf_counter()
    index.save(path)
    loaded = SeenIndex.load(path)
    t_io = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = NewOnly(loaded)
    kept = sum(1 for _ in new.watch(more))
    t_update = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = {fingerprint(m) for m in messages}
    kept_plain = sum(1 for m in more if fingerprint(m) not in plain)
    t_set = time.perf_counter() - t0
    set_mb = (sys.getsizeof(plain) + sum(sys.getsizeof(v) for v in plain)) / 1e6
    assert kept == kept_plain == count // 10 and new.duplicates == count
    print(f"{count:,} messages: index {path.stat().st_size / 1e6:.1f} MB on disk; fingerprinting {t_build:.2f} s; "
          f"save + load {t_io * 1000:.0f} ms; an export of them + 10% new through the index {t_update:.2f} s "
          f"({kept:,} new); baseline, a Python set of the fingerprints: {set_mb:.0f} MB in memory (index "
          f"{loaded.values.nbytes / 1e6:.0f} MB), {t_set:.2f} s to build and pass the export through; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (the messages themselves included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25, help="share of each command's default schedule")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--new-share", type=float, default=0.10)
    parser.add_argument("--eval-limit", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="keep the workspaces here")
    parser.add_argument("--index-only", action="store_true", help="only the index of processed messages")
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.index_only:
        index_bench(args.messages)
        return

    from core.workspace import Workspace
    from dataprocess.incremental import stage_update
    from trainer.schedule import plan
    from trainer.update import UPDATE_EPOCHS

    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-update-"))
    root.mkdir(parents=True, exist_ok=True)
    with open(SAMPLE, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    cut = 1 + round((len(rows) - 1) * (1 - args.new_share))
    old_csv = root / "old.csv"
    with open(old_csv, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows[:cut])
    a, b, c = root / "A", root / "B", root / "C"
    for ws in (a, b, c):
        shutil.rmtree(ws, ignore_errors=True)

    # the existing twin
    t_old_process = twin("process", old_csv, "--facts", FACTS, "-w", a)
    staged = stage_update([SAMPLE], Workspace(a))  # a dry run: how much the update will train on
    update_examples = staged.new_examples["train"] + staged.replay_examples
    full_examples = sum(1 for line in open(staged.staging / "train.jsonl", encoding="utf-8") if line.strip())
    new_messages, duplicates = staged.new_messages, staged.duplicate_messages
    staged.discard()
    full_steps = max(1, round(plan(full_examples, 8).steps * args.scale))
    update_steps = max(1, round(math.ceil(update_examples * UPDATE_EPOCHS / 8) * args.scale))
    old_steps = max(1, round(plan(sum(1 for _ in open(a / "data" / "train.jsonl")), 8).steps * args.scale))
    print(f"sample: {len(rows) - 1} messages, old export {cut - 1}, new {new_messages} "
          f"({duplicates} overlap); train examples: full {full_examples}, update {update_examples} "
          f"(new + replayed); steps at scale {args.scale}: old twin {old_steps}, full {full_steps}, "
          f"update {update_steps}; lr {args.lr}", flush=True)
    t_old_train = twin("train", "-w", a, "--max-steps", old_steps, "--lr", args.lr)
    print(f"existing twin: process {t_old_process:.1f} s + train {t_old_train:.1f} s", flush=True)

    # the update
    t_update = twin("update", "-w", a, SAMPLE, "--max-steps", update_steps, "--lr", args.lr, "--no-eval", "--no-export")
    print(f"twin update: {t_update:.1f} s", flush=True)

    # the full retrain: process everything (timed), train from scratch on the update's merged data
    t_process = twin("process", SAMPLE, "--facts", FACTS, "-w", c)
    b.mkdir()
    shutil.copytree(a / "data", b / "data")
    settings = Workspace(a).settings()
    settings.train = None
    settings.save(b / "twin.toml")
    t_train = twin("train", "-w", b, "--max-steps", full_steps, "--lr", args.lr)
    full = t_process + t_train
    print(f"full: process {t_process:.1f} s + train {t_train:.1f} s = {full:.1f} s", flush=True)

    for ws in (a, b):
        twin("eval", "-w", ws, "--keep-sampling", "--no-base", "--runtime", "transformers",
             "--limit", args.eval_limit)
    acc_update, acc_full = classifier(a), classifier(b)
    print()
    print(f"{'':34}{'update':>12}{'full retrain':>14}")
    print(f"{'time (s)':34}{t_update:>12.1f}{full:>14.1f}")
    print(f"{'  of which train (s)':34}{'':>12}{t_train:>14.1f}")
    print(f"{'optimizer steps':34}{update_steps:>12}{full_steps:>14}")
    print(f"{'classifier accuracy (0.5 = ideal)':34}{acc_update:>12.3f}{acc_full:>14.3f}")
    print(f"\nupdate / full time: {t_update / full:.1%} (goal <= 30%); classifier difference "
          f"{abs(acc_update - acc_full):.3f} (goal <= 0.02)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

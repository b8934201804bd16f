"""Per-contact voice on enough replies to see 15%: the sample's twin, served, asked the prompts of
*other* conversations of the same person with each contact (issue 22, "per contact").

`twin eval`'s per-contact table has 3-9 test prompts a contact, so a row moves by +-0.2 between
draws (BENCHMARKS.md, issue 22). This bench writes another history of the bundled sample's
person (``samples/make_sample.py``'s ``build_rows`` with another seed: the same contacts, topics
and voices, other conversations), reads it with `twin process` and the same facts file, leaves
out any example that is also in the twin's own splits, and asks a real `twin serve` on the
twin's workspace (through the ``openai`` client) each contact's prompts twice: with the contact
named (the ``X-Twin-Contact`` header) and without. Printed per contact: the person's mean reply
length and capitals rate to that contact, the twin's named and unnamed, their ratios with a 90%
paired-bootstrap interval over prompts. Goal: named within 15% of the person; unnamed not.

    .venv/bin/python bench/bench_contacts_heldout.py -w /tmp/w3            # served twin, ~10 min
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "samples"))

from bench_small_heldout import SPLITS, TWIN, bootstrap, key  # noqa: E402
from bench_voice import served_replies  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from dataprocess.splits import read_split  # noqa: E402
from trainer.memory_eval import voice_figures  # noqa: E402


def held_out_by_contact(workspace: Workspace, seed: int, tmp: Path) -> tuple[dict[str, list], int]:
    """The chat examples of another history of the sample's person, by contact, less any that
    the twin has in its splits; and how many were left out so."""
    import make_sample

    export = tmp / "messages.csv"
    export.write_bytes(make_sample.csv_text(make_sample.build_rows(seed)).encode("utf-8"))
    subprocess.run(TWIN + ["process", str(export), "--facts", str(ROOT / "samples" / "facts.toml"),
                           "--workspace", str(tmp / "ws")], check=True, stdout=subprocess.DEVNULL)
    seen = {key(e) for split in SPLITS for e in read_split(workspace.split_path(split), required=False)}
    fresh = Workspace(tmp / "ws")
    examples = [e for split in SPLITS for e in read_split(fresh.split_path(split), required=False)
                if e.source == "chat" and e.contact]
    by_contact: dict[str, list] = {}
    for e in examples:
        if key(e) not in seen:
            by_contact.setdefault(e.contact, []).append(e)
    return by_contact, len(examples) - sum(map(len, by_contact.values()))


def ratio_interval(twin: list[str], person: list[str]) -> tuple[float, float]:
    """90% interval of mean length twin / person over prompts (bench_small_heldout's paired bootstrap)."""
    return bootstrap([[t] for t in twin], [[p] for p in person])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--workspace", type=Path, required=True, help="the sample's trained, exported twin")
    parser.add_argument("--seed", type=int, default=20240305, help="the other history's seed (the sample's: 20240304)")
    parser.add_argument("--min-prompts", type=int, default=20, help="contacts with fewer held-out prompts are left out")
    parser.add_argument("--limit", type=int, default=60, help="at most this many prompts a contact (0: all)")
    args = parser.parse_args()
    workspace = Workspace(args.workspace)
    with tempfile.TemporaryDirectory(prefix="twin-contacts-") as tmp:
        by_contact, dropped = held_out_by_contact(workspace, args.seed, Path(tmp))
    rows = sorted(((c, ex[: args.limit or None]) for c, ex in by_contact.items() if len(ex) >= args.min_prompts),
                  key=lambda row: -len(row[1]))
    asks = [[m for m in e.messages() if m["role"] != "system"] for _, ex in rows for e in ex]
    names = [c for c, ex in rows for _ in ex]
    print(f"{len(asks)} held-out prompts of {len(rows)} contacts ({dropped} left out: in the twin's splits), "
          f"one reply each, named and unnamed, from twin serve -w {args.workspace}\n", flush=True)
    named = [text for text, _ in served_replies(args.workspace, asks, 1, names)]
    unnamed = [text for text, _ in served_replies(args.workspace, asks, 1)]
    print(f"{'contact':18s}{'prompts':>8s}{'person':>8s}{'named':>8s}{'ratio (90%)':>19s}{'unnamed':>9s}"
          f"{'ratio (90%)':>19s}{'capitals person/named/unnamed':>32s}")
    at = 0
    for contact, examples in rows:
        person = [e.reply for e in examples]
        mine_named, mine_plain = named[at:at + len(examples)], unnamed[at:at + len(examples)]
        at += len(examples)
        p, a, b = voice_figures(person), voice_figures(mine_named), voice_figures(mine_plain)
        lo_a, hi_a = ratio_interval(mine_named, person)
        lo_b, hi_b = ratio_interval(mine_plain, person)
        print(f"{contact[:17]:18s}{len(examples):8d}{p['mean_chars']:8.1f}{a['mean_chars']:8.1f}"
              f"{a['mean_chars'] / p['mean_chars']:7.2f} ({lo_a:.2f}-{hi_a:.2f}){b['mean_chars']:9.1f}"
              f"{b['mean_chars'] / p['mean_chars']:7.2f} ({lo_b:.2f}-{hi_b:.2f})"
              f"{p['capitals_rate']:14.2f} / {a['capitals_rate']:.2f} / {b['capitals_rate']:.2f}")


if __name__ == "__main__":
    main()

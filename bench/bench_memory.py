"""Memory on the bundled sample, measured as issue 22 measured it: from a client of `twin serve`.

Asks a running ``twin serve --workspace W`` (through the ``openai`` client) each held-out
``[[check]]`` paraphrase of ``samples/facts.toml`` and each ``[[unknown]]`` question three times,
and counts the replies that hold the fact and those that make an answer up
(``trainer.memory_eval``'s rules); prints them beside what ``twin eval`` reported for the same
workspace and the issue's baseline (24 of 30 answers held the fact on the demo twin before the
knowledge base), the per-contact table from the eval report, and the perplexity against a
workspace trained before the memory (``--before``, e.g. the demo twin of an older checkout).

    .venv/bin/python bench/bench_memory.py -w /tmp/demo-mem --before demo-workspace
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_voice import served_replies  # noqa: E402
from dataprocess.splits import read_split  # noqa: E402
from dataprocess.memory import Memory  # noqa: E402
from trainer.memory_eval import ROUNDS, judge_unknown  # noqa: E402

BASELINE_ACCURACY = 24 / 30  # issue 22: the demo twin, served, before the knowledge base
ISSUE_CHECKS = 10            # the facts file's first ten paraphrases are the issue's; the rest came later
FRESH_FROM = 20              # ... and those from the 21st on were written by someone who saw only the facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--workspace", type=Path, required=True)
    parser.add_argument("--before", type=Path, help="an evaluated workspace trained before the memory")
    args = parser.parse_args()
    checks = json.loads((args.workspace / "data" / "fact_checks.json").read_text())
    report = json.loads((args.workspace / "eval" / "report.json").read_text())
    items, unknown = checks["checks"], checks["unknown"]
    prompts = [[{"role": "user", "content": c["question"]}] for c in items] + \
              [[{"role": "user", "content": q}] for q in unknown]
    said = served_replies(args.workspace, prompts, ROUNDS)
    texts = [t for t, _ in said]
    held = [any(a.lower() in texts[i * ROUNDS + r].lower() for a in c["answers"])
            for i, c in enumerate(items) for r in range(ROUNDS)]
    offset = len(items) * ROUNDS
    memory = Memory.load(args.workspace / "data")
    judged = [judge_unknown(t, unknown[i // ROUNDS], memory) for i, t in enumerate(texts[offset:])]
    invented = [j == "invented" for j in judged]
    wrong = [j == "wrong fact" for j in judged]
    served_accuracy, served_invented = sum(held) / len(held), sum(invented) / len(invented)

    facts = report.get("facts") or {}
    print(f"\n{args.workspace}: {len(items)} paraphrases and {len(unknown)} unknown questions, {ROUNDS} replies "
          "each, from twin serve (openai client)\n")
    print(f"{'figure':40s} {'served':>8s} {'twin eval':>10s} {'goal':>7s}   baseline")
    print(f"{'fact accuracy':40s} {served_accuracy:8.0%} {facts.get('accuracy', float('nan')):10.0%} {'>=95%':>7s}"
          f"   {BASELINE_ACCURACY:.0%} (24/30)")
    first = held[:ISSUE_CHECKS * ROUNDS]
    print(f"{'  the first ' + str(ISSUE_CHECKS) + ' (the issue measured these)':40s} {sum(first) / len(first):8.0%}")
    fresh = held[FRESH_FROM * ROUNDS:]
    if fresh:
        print(f"{'  the ' + str(len(items) - FRESH_FROM) + ' written from the facts alone':40s} {sum(fresh) / len(fresh):8.0%}")
    by_check = {c["question"]: c for c in facts.get("checks", [])}
    shown = [by_check[c["question"]].get("shown") for c in items if c["question"] in by_check]
    if shown and None not in shown:
        on = [h for i, h in enumerate(held) if shown[i // ROUNDS]]
        print(f"{'  answer on a line shown (the search)':40s} {sum(shown):>4d}/{len(shown):<3d}"
              f"{facts.get('shown_rate', float('nan')):10.0%}")
        print(f"{'  accuracy where it was shown (reading)':40s} {(sum(on) / len(on) if on else float('nan')):8.0%} "
              f"{facts.get('accuracy_when_shown') or float('nan'):10.0%}")
    print(f"{'invented answers to unknown questions':40s} {served_invented:8.0%} "
          f"{facts.get('invented_rate', float('nan')):10.0%} {'<=5%':>7s}   n/a")
    print(f"{'answered with a fact that does not fit':40s} {sum(wrong) / len(wrong):8.0%} "
          f"{facts.get('wrong_fact_rate', float('nan')):10.0%} {'':>7s}   n/a")
    for i, c in enumerate(items):
        replies = texts[i * ROUNDS:(i + 1) * ROUNDS]
        mark = {True: "shown", False: "NOT SHOWN"}.get(by_check.get(c["question"], {}).get("shown"), "")
        print(f"  {c['question']!r:40s} {sum(held[i * ROUNDS:(i + 1) * ROUNDS])}/{ROUNDS} {mark:9s}  {replies}")
    for i, q in enumerate(unknown):
        replies = texts[offset + i * ROUNDS: offset + (i + 1) * ROUNDS]
        print(f"  {q!r:40s} invented {sum(invented[i * ROUNDS:(i + 1) * ROUNDS])}/{ROUNDS}, wrong fact "
              f"{sum(wrong[i * ROUNDS:(i + 1) * ROUNDS])}/{ROUNDS}  {replies}")
    if report.get("contacts"):
        print(f"\n{'per contact (twin eval)':28s}{'prompts':>8s}{'length you':>12s}{'twin':>8s}{'ratio':>8s}"
              f"{'capitals you':>14s}{'twin':>7s}")
        for c in report["contacts"]:
            print(f"{c['contact'][:27]:28s}{c['test_prompts']:8d}{c['person']['mean_chars']:12.1f}"
                  f"{c['twin']['mean_chars']:8.1f}{c['ratios']['mean_chars'] or 0:8.2f}"
                  f"{c['person']['capitals_rate']:14.2f}{c['twin']['capitals_rate']:7.2f}")
    if report.get("contacts"):
        # served, each contact's test prompts with the contact named and without
        examples = [e for e in read_split(args.workspace / "data" / "test.jsonl") if e.source == "chat"]
        rows = [c for c in report["contacts"]]
        asks, names = [], []
        for c in rows:
            mine = [e for e in examples if e.contact == c["contact"]]
            for e in mine:
                asks.append([m for m in e.messages() if m["role"] != "system"])
                names.append(c["contact"])
        with_contact = served_replies(args.workspace, asks, ROUNDS, names)
        without = served_replies(args.workspace, asks, ROUNDS)
        print(f"\n{'served, per contact':28s}{'you':>8s}{'named':>8s}{'ratio':>7s}{'unnamed':>9s}{'ratio':>7s}"
              "   (mean length; goal: named within 15%)")
        for c in rows:
            idx = [i for i, n in enumerate(names) if n == c["contact"]]
            named = [len(with_contact[i * ROUNDS + r][0]) for i in idx for r in range(ROUNDS)]
            plain = [len(without[i * ROUNDS + r][0]) for i in idx for r in range(ROUNDS)]
            you = c["person"]["mean_chars"]
            a, b = sum(named) / len(named), sum(plain) / len(plain)
            print(f"{c['contact'][:27]:28s}{you:8.1f}{a:8.1f}{a / you:7.2f}{b:9.1f}{b / you:7.2f}")
    print(f"\nperplexity (twin) {report['perplexity']['twin']}", end="")
    if args.before:
        before = json.loads((args.before / "eval" / "report.json").read_text())["perplexity"]["twin"]
        print(f" vs {before} before the memory: {report['perplexity']['twin'] / before:.2f}x (goal <= 1.10x)")
    print(f"\nclassifier {report['classifier_accuracy']['twin']}, termination {report['termination_rate']['twin']}, "
          f"loops {report['loop_rate']['twin']}, empty {report['empty_rate']['twin']}")


if __name__ == "__main__":
    main()

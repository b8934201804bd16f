"""Fidelity of a trained twin against issue 13's goals, next to the figures the issue started from.

Runs `twin process` (unless the workspace already has data), `twin train` and `twin eval` with
the settings asked for, then prints each goal, this run's figure and the issue's baseline:

    # the generated ~120-pair persona with plain `twin train` defaults
    .venv/bin/python bench/bench_fidelity.py --small -w /tmp/fid-small
    # the bundled sample with `make demo`'s settings
    .venv/bin/python bench/bench_fidelity.py -w /tmp/fid-demo "--train-args=--max-steps 80 --lr 1e-3"
    # only read an evaluated workspace again
    .venv/bin/python bench/bench_fidelity.py -w demo-workspace --report-only

Goals (issue 13): termination >= 98%, no loops in >= 98% of replies, 0 empty replies, mean length,
` | ` rate and lowercase within 10% of the person's, classifier accuracy <= 65% (on the sample),
perplexity not more than 10% above the sample's 7.36 (3-epoch run) / 7.62 (demo run).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWIN = [sys.executable, "-m", "twin_cli"] if not (ROOT / ".venv" / "bin" / "twin").exists() \
    else [str(ROOT / ".venv" / "bin" / "twin")]

# What the issue measured before (small persona: greedy, 33 steps; sample: the demo twin, served).
BASELINE = {
    "small": {"termination": 0.70, "separator_ratio": 0.30 / 0.90, "length_ratio": 1.6},
    "sample": {"classifier": 0.77, "length_ratio": 0.88, "separator_ratio": 1.12, "perplexity": 7.62},
}


def run(args: list[str]) -> float:
    print("$ " + " ".join(shlex.quote(a) for a in args), flush=True)
    started = time.monotonic()
    subprocess.run(args, check=True, cwd=ROOT)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--workspace", type=Path, required=True)
    parser.add_argument("--small", action="store_true", help="the generated ~120-pair persona instead of the sample")
    parser.add_argument("--train-args", default="", help="extra `twin train` options, as one argument: "
                        "\"--train-args=--max-steps 80\" (default: none)")
    parser.add_argument("--eval-args", default="", help="extra `twin eval` options, e.g. --eval-args=--no-base")
    parser.add_argument("--report-only", action="store_true", help="read WORKSPACE/eval/report.json only")
    args = parser.parse_args()
    ws = args.workspace
    timings = {}
    if not args.report_only:
        if not (ws / "data" / "train.jsonl").is_file():
            if args.small:
                sys.path.insert(0, str(ROOT / "samples"))
                import make_small_persona

                source = [str(make_small_persona.generate(ws.parent / (ws.name + "-export")))]
            else:
                source = ["samples/imessage/messages.csv", "--facts", "samples/facts.toml"]
            run(TWIN + ["process", *source, "--workspace", str(ws)])
        timings["train_s"] = run(TWIN + ["train", "--workspace", str(ws), *shlex.split(args.train_args)])
        timings["eval_s"] = run(TWIN + ["eval", "--workspace", str(ws), *shlex.split(args.eval_args)])
    report = json.loads((ws / "eval" / "report.json").read_text())
    settings = (ws / "twin.toml").read_text()
    baseline = BASELINE["small" if args.small else "sample"]
    # "person": the person's habit over all their replies (train, valid and test); "test replies":
    # the real replies to the same test prompts only (a dozen on the small persona: noisy)
    ratios = report["ratios"]["twin"]
    to_test = report.get("ratios_to_test", report["ratios"])["twin"]

    def pct(v):
        return "n/a" if v is None else f"{v:.0%}"

    rows = [
        ("termination rate", ">= 98%", pct(report["termination_rate"]["twin"]), pct(baseline.get("termination"))),
        ("replies without loops", ">= 98%", pct(1 - report["loop_rate"]["twin"]), "n/a"),
        ("empty replies", "0", f"{round(report['empty_rate']['twin'] * report['generated'] * report.get('samples_per_prompt', 1))}", "1 in 10 served"),
        ("mean length, twin/person", "0.90-1.10", f"{ratios['mean_chars']:.2f}", f"{baseline['length_ratio']:.2f}"),
        ("' | ' rate, twin/person", "0.90-1.10", f"{ratios['separator_rate'] or 0:.2f}",
         f"{baseline['separator_ratio']:.2f}"),
        ("lowercase rate, twin/person", "0.90-1.10", f"{ratios['lowercase_rate'] or 0:.2f}", "0.97"),
        ("  length, twin/test replies", "", f"{to_test['mean_chars']:.2f}", ""),
        ("  ' | ', twin/test replies", "", f"{to_test['separator_rate'] or 0:.2f}", ""),
        ("  lowercase, twin/test", "", f"{to_test['lowercase_rate'] or 0:.2f}", ""),
        ("classifier accuracy", "<= 65%", pct(report["classifier_accuracy"]["twin"]), pct(baseline.get("classifier"))),
        ("sounds like you", "", f"{report['sounds_like_you']['score']}/100", ""),
        ("perplexity (twin)", "<= 1.1x before", f"{report['perplexity']['twin']:.2f}",
         f"{baseline['perplexity']:.2f}" if "perplexity" in baseline else "n/a"),
    ]
    print(f"\n{'figure':28}{'goal':>16}{'this run':>12}{'issue':>16}")
    for name, goal, now, before in rows:
        print(f"{name:28}{goal:>16}{now:>12}{before:>16}")
    print(f"\ntest prompts: {report['generated']} x {report.get('samples_per_prompt', 1)} replies; person's "
          f"replies: {report.get('person_replies', 'n/a')}; sampling: {report['sampling']['used']} "
          f"({report['sampling']['chosen_from']})")
    train = next((line for line in settings.splitlines() if line.startswith("steps")), "")
    print(f"twin.toml [train] {train}; " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()

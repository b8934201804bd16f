"""Training throughput: `twin train`'s trainer vs a plain TRL SFTTrainer with its defaults.

Both fine-tune the embedded default model (SmolLM2-135M-Instruct) with the same LoRA config
(r 16, alpha 32, dropout 0.05, all linear layers) on the same data (the bundled sample,
processed by `twin process`) for the same number of steps and batch size, one after the other
in this process's children. Prints tokens/s of each (prompt + completion tokens, TRL's
`num_tokens` count), their ratio, and each run's final validation loss.

    .venv/bin/python bench/bench_train.py [--steps 20]

`twin train` runs with seed 42, TRL's default, so both see the same examples in the same order
(the remaining differences: twin's cosine schedule with 5% warmup vs TRL's linear one, and the
levers below). No early stopping, so both run every step.

`--variants` adds `twin train` with levers turned off (padded batches, length grouping), so each
lever's share is measured in the same run. "twin train (full LM head)" is twin on TRL's public
options alone (padding_free, completion_only_loss, loss_type "nll"), without the
`trainer/reply_logits.py` patch. The validation replies twin generates at each evaluation
(`track_replies`) are off here: they change nothing in the loss and are not timed.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads, as twin_cli does

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

PLAIN_TRL = r'''
import json, os, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
ws, base, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = lambda s: Dataset.from_list([{k: json.loads(l)[k] for k in ("prompt", "completion")}
                                    for l in open(f"{ws}/data/{s}.jsonl")])
tok = AutoTokenizer.from_pretrained(base)
if tok.pad_token_id == tok.eos_token_id:
    tok.pad_token = "<|endoftext|>"   # the one change needed for the model to learn to stop at all
model = AutoModelForCausalLM.from_pretrained(base)
args = SFTConfig(output_dir=f"{ws}/plain", max_steps=steps, per_device_train_batch_size=8, learning_rate=2e-4,
                 report_to="none", use_cpu=True, save_strategy="no", logging_steps=steps)
trainer = SFTTrainer(model=model, args=args, train_dataset=load("train"), eval_dataset=load("valid"),
                     processing_class=tok, peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                     target_modules="all-linear", task_type="CAUSAL_LM"))
start = time.perf_counter(); trainer.train(); seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds,
                  "tokens": max(int(float(h.get("num_tokens", 0))) for h in trainer.state.log_history),
                  "eval_loss": trainer.evaluate()["eval_loss"]}))
'''

TWIN = r'''
import json, sys, time
from core.workspace import Workspace
from trainer.train import TrainOptions, build_trainer
ws, base, steps, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
trainer, _, _ = build_trainer(Workspace(ws), TrainOptions(base=base, max_steps=steps, learning_rate=2e-4,
                                                          save_steps=10**6, tensorboard=False, seed=42,
                                                          patience=0, track_replies=False, **extra),
                              log=lambda *_: None)
start = time.perf_counter(); trainer.train(); seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds,
                  "tokens": max(int(float(h.get("num_tokens", 0))) for h in trainer.state.log_history),
                  "eval_loss": trainer.evaluate()["eval_loss"]}))
'''


# `twin train` variants, each a set of TrainOptions overrides, to measure each lever
VARIANTS = {
    "twin train": {},                                       # the defaults: padding-free, reply-only LM head
    "twin train (full LM head)": {"reply_logits_only": False},           # TRL scores every position on CPU
    # TRL's default schedule (linear decay, no warmup): isolates the levers from twin's schedule
    "twin train --lr-scheduler linear --warmup 0": {"lr_scheduler": "linear", "warmup": 0.0},
    "twin train --no-padding-free": {"padding_free": False},            # padded batches
    "twin train --no-padding-free --group-by-length": {"padding_free": False, "group_by_length": True},
}


def run(code: str, ws: Path, base: str, steps: int, extra: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(ws), base, str(steps), json.dumps(extra or {})],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"benchmark run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="a multiple of 5 (the logging interval)")
    parser.add_argument("--variants", default="twin train",
                        help=f"comma-separated, among: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from trainer.base_model import resolve_base

    base = resolve_base()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([str(Path(sys.executable).with_name("twin")), "process", str(ROOT / "samples/imessage/messages.csv"),
                        "--facts", str(ROOT / "samples/facts.toml"), "-w", str(ws)], check=True, capture_output=True)
        results = {"plain TRL SFTTrainer (defaults)": run(PLAIN_TRL, ws, base, args.steps)}
        for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
            if name not in VARIANTS:
                sys.exit(f"unknown variant {name!r}; choose among: {', '.join(VARIANTS)}")
            results[name] = run(TWIN, ws, base, args.steps, VARIANTS[name])
    print(f"{args.steps} steps, batch 8, SmolLM2-135M, LoRA r16 all-linear, {os.cpu_count()} CPUs")
    width = max(len(n) for n in results) + 2
    print(f"{'trainer':{width}}{'seconds':>10}{'tokens':>10}{'tokens/s':>10}{'val loss':>10}{'vs plain':>10}")
    plain = results["plain TRL SFTTrainer (defaults)"]
    for r in results.values():
        r["tps"] = r["tokens"] / r["seconds"] if r["tokens"] else float("nan")
    for name, r in results.items():
        print(f"{name:{width}}{r['seconds']:>10.1f}{r['tokens']:>10}{r['tps']:>10.1f}{r['eval_loss']:>10.3f}"
              f"{r['tps'] / plain['tps']:>9.2f}x")


if __name__ == "__main__":
    main()

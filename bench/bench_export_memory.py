"""Export memory of a big model: peak RSS of `twin export` against the model's 16-bit size.

Builds (once, then reused) a synthetic Llama of ~1.2B parameters shaped like Llama-3.2-1B
(hidden 2048, 16 layers, 32 heads / 8 KV heads, MLP 8192, vocabulary 128,256, tied
embeddings): random bfloat16 weights from a config with transformers, saved as safetensors
shards with the embedded model's tokenizer, in ``$TWIN_CACHE/bench/synthetic-llama-1.2b-tied``
(the shape bench/bench_train_memory.py trains). Then a LoRA adapter (r 16 on every linear
layer, random B so that it changes the model) in a fresh workspace, and for each run

    twin export -w WS --quant Q [--verify MODE]

in a child process, whose peak resident memory is read from the kernel (``wait4``'s
``ru_maxrss``: the child alone, llama.cpp's work included since it runs in-process).
Prints peak RSS, its ratio to the model's 16-bit bytes (goal, issue 12: <= 1.25x) and wall
time per run, next to the baseline measured before the streaming export (7.35 GB, 3.2x, with
a 4.4 GB fp32 merged copy left in model/hf), and checks that nothing but the GGUF and the
Modelfile is left in model/.

    .venv/bin/python bench/bench_export_memory.py [--runs Q8_0:full,Q8_0:quick,F16:full]

Random weights cost what real ones cost here: memory and time depend on the shapes.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as twin does, before torch loads

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from synthetic_model import synthetic_llama  # noqa: E402 - beside this script

ROOT = Path(__file__).resolve().parents[1]
BASELINE_GB, BASELINE_RATIO = 7.35, 3.2   # `twin export --quant Q8_0` before the streaming merge
GOAL_RATIO = 1.25


def make_workspace(base: Path, root: Path) -> Path:
    """A workspace whose adapter (LoRA r16, all linear layers) was "trained" on ``base``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.settings import Persona, Settings
    from core.workspace import Workspace

    ws = Workspace(root)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                  task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.01)
    peft_model.save_pretrained(ws.adapter_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(ws.adapter_dir)
    ws.save_settings(Settings(persona=Persona(name="maya")))
    return root


def peak_rss_of(command: list[str], log: Path) -> tuple[int, float, int]:
    """Run ``command``; its exit status, wall seconds and peak RSS in bytes (the child alone)."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="Q8_0:full,Q8_0:quick,F16:full",
                        help="comma-separated QUANT:VERIFY pairs (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (printed)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    base = synthetic_llama()
    weights = sum(p.stat().st_size for p in base.glob("*.safetensors"))
    n_params = weights // 2
    work = Path(tempfile.mkdtemp(prefix="twin-export-mem-"))
    try:
        print("making the LoRA adapter...", flush=True)
        ws = make_workspace(base, work / "ws")
        print(f"\nmodel: synthetic Llama, {n_params / 1e9:.2f}B parameters, 16-bit size {weights / 1e9:.2f} GB "
              f"({os.cpu_count()} CPUs)")
        print(f"{'run':38} {'exit':>4} {'peak RSS':>9} {'x 16-bit':>8} {'wall':>7}   model/ afterwards")
        for run in args.runs.split(","):
            quant, verify = run.split(":")
            log = work / f"{quant}-{verify}.log"
            command = [sys.executable, "-m", "twin_cli", "export", "-w", str(ws), "--quant", quant,
                       "--verify", verify]
            code, wall, peak = peak_rss_of(command, log)
            left = sorted(p.name for p in (ws / "model").iterdir()) if (ws / "model").is_dir() else []
            print(f"{'twin export --quant ' + quant + ' --verify ' + verify:38} {code:>4} {peak / 1e9:>7.2f}GB "
                  f"{peak / weights:>7.2f}x {wall:>6.0f}s   {', '.join(left)}", flush=True)
            if code != 0:
                print(log.read_text()[-2000:])
            for line in log.read_text().splitlines():
                if "agreement" in line or "reference" in line:
                    print("      " + line.strip())
            shutil.rmtree(ws / "model", ignore_errors=True)
        print(f"goal: <= {GOAL_RATIO}x the 16-bit size ({GOAL_RATIO * weights / 1e9:.2f} GB), only the GGUF and "
              "the Modelfile left in model/")
        print(f"baseline (before the streaming export): {BASELINE_GB} GB peak ({BASELINE_RATIO}x), "
              "plus a 4.4 GB fp32 merged copy left in model/hf")
    finally:
        if args.keep:
            print(f"workspace kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

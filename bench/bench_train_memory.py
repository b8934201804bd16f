"""Training memory of a big model on CPU: peak RSS of `twin train --max-steps 2`, --quant none vs 4bit.

Builds (once, then reused) a synthetic Llama of ~1.2B parameters shaped like Llama-3.2-1B
(hidden 2048, 16 layers, 32 heads / 8 KV heads, MLP 8192, vocabulary 128,256, tied
embeddings): random bfloat16 weights from a config, saved as safetensors with the embedded
model's tokenizer, in ``$TWIN_CACHE/bench/synthetic-llama-1.2b``. Then, for each
quantization, processes the bundled sample into a fresh workspace and runs

    twin train -w WS --base MODEL --quant Q --max-steps 2 --batch-size B --max-length L

in a child process (without the validation split: the memory of training alone), and reads
that child's peak resident memory from the kernel
(``wait4``'s ``ru_maxrss``), and its peak anonymous memory (``RssAnon``, sampled): RSS also
counts the pages of the memory-mapped checkpoint that loading touched, which are clean file
pages the kernel can drop under pressure; the anonymous part is what the run really holds.
Prints both and the wall time per quantization next to the model's 16-bit size (the
baseline: what the checkpoint itself weighs).

    .venv/bin/python bench/bench_train_memory.py [--quants none,4bit] [--batch-size 2] [--max-length 256]

The random weights train as well as real ones for this purpose: memory and time depend on
the shapes, not on the values.
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

ROOT = Path(__file__).resolve().parents[1]
SHAPE = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
             num_key_value_heads=8, vocab_size=128256, max_position_embeddings=4096, tie_word_embeddings=True,
             rope_theta=500000.0)


def synthetic_llama(target: Path) -> Path:
    """The synthetic ~1.2B Llama at ``target``, built on first use (a few minutes, ~2.5 GB)."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from core.atomic import atomic_dir
    from trainer.base_model import resolve_base

    tokenizer = AutoTokenizer.from_pretrained(resolve_base())  # the embedded model's tokenizer and template
    config = LlamaConfig(**SHAPE, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         dtype="bfloat16")
    print(f"building the synthetic model in {target} (once)...", flush=True)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    model.tie_weights()  # to_empty gave the output layer its own tensor: share the embeddings' again
    with torch.no_grad():  # random weights, in place, one tensor at a time
        for name, param in model.named_parameters():
            if "norm" in name:
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, max_shard_size="1GB")
        tokenizer.save_pretrained(tmp)
    return target


def _weights_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))


def _rss_anon(pid: int) -> int:
    """The process's anonymous resident memory in bytes (its heap: not the file pages it maps)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss_of(command: list[str], log: Path) -> tuple[int, float, int, int]:
    """Run ``command``; its exit status, wall seconds, peak RSS in bytes (the child alone, from
    the kernel) and peak anonymous RSS (sampled every 50 ms from /proc)."""
    start = time.perf_counter()
    peak_anon = 0
    with open(log, "w") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_anon = max(peak_anon, _rss_anon(proc.pid))
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss * 1024, peak_anon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quants", default="none,4bit")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model", type=Path, default=None, help="default: the synthetic model in twin's cache")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # a script beside the package, not an installed module
    from core.base_ref import user_cache_dir

    model = args.model or synthetic_llama(user_cache_dir() / "bench" / "synthetic-llama-1.2b")
    size16 = _weights_bytes(model)
    n_params = size16 / 2  # 16-bit weights: two bytes a parameter (the safetensors headers are noise)
    twin = str(Path(sys.executable).with_name("twin"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sample"
        subprocess.run([twin, "process", str(ROOT / "samples/imessage/messages.csv"), "--facts",
                        str(ROOT / "samples/facts.toml"), "-w", str(data)], check=True, capture_output=True)
        for quant in [q.strip() for q in args.quants.split(",") if q.strip()]:
            ws = Path(tmp) / f"ws-{quant}"
            shutil.copytree(data, ws)
            # training alone: no validation pass (its replies would be generated by the 1.2B model on CPU)
            (ws / "data" / "valid.jsonl").unlink()
            log = Path(tmp) / f"{quant}.log"
            code, seconds, peak, anon = peak_rss_of(
                [twin, "train", "-w", str(ws), "--base", str(model), "--quant", quant, "--max-steps", str(args.steps),
                 "--batch-size", str(args.batch_size), "--max-length", str(args.max_length), "--no-tensorboard",
                 "--save-steps", "1000"], log)
            if code:
                sys.exit(f"twin train --quant {quant} failed ({code}):\n{log.read_text()[-3000:]}")
            rows.append((quant, peak, anon, seconds))
    print(f"synthetic Llama, ~{n_params / 1e9:.2f}B parameters, 16-bit weights {size16 / 1e9:.2f} GB; "
          f"`twin train --max-steps {args.steps} --batch-size {args.batch_size} --max-length {args.max_length}`, "
          f"CPU, {os.cpu_count()} cores")
    print(f"{'--quant':10}{'peak RSS GB':>13}{'x 16-bit':>10}{'of it anonymous GB':>20}{'x 16-bit':>10}"
          f"{'seconds':>9}")
    for quant, peak, anon, seconds in rows:
        print(f"{quant:10}{peak / 1e9:>13.2f}{peak / size16:>9.2f}x{anon / 1e9:>20.2f}{anon / size16:>9.2f}x"
              f"{seconds:>9.0f}")


if __name__ == "__main__":
    main()

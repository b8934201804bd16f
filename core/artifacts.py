"""Every name in a workspace, defined once: where each stage writes and the next one reads.

::

    WORKSPACE/
      twin.toml                 SETTINGS_FILE: persona, data rules, base model, sampling
      data/                     DATA_DIR: train/valid/test.jsonl, report.json (+ charts)
      adapter/                  ADAPTER_DIR: PEFT adapter + tokenizer, train_log.jsonl
        checkpoints/            CHECKPOINTS_DIR: resumable trainer checkpoints
      eval/                     EVAL_DIR: report.json + charts
      model/                    MODEL_DIR: twin-<QUANT>.gguf, twin-lora-<TYPE>.gguf, Modelfile
        hf/                     MERGED_DIR: the merged HF model, only when asked
      feedback.sqlite           FEEDBACK_FILE: ratings sent to the server
      can_you_tell.sqlite       JUDGEMENTS_FILE: friends' picks on the "Can you tell?" page

The model GGUF and the LoRA GGUF have names that cannot be taken for each other:
``twin-Q4_K_M.gguf`` vs ``twin-lora-F16.gguf``; :func:`model_ggufs` never lists an adapter.
"""
from __future__ import annotations

import re
from pathlib import Path

SETTINGS_FILE = "twin.toml"
DATA_DIR = "data"
ADAPTER_DIR = "adapter"
CHECKPOINTS_DIR = "checkpoints"
BEST_ADAPTER_DIR = "best"           # inside CHECKPOINTS_DIR: the best adapter so far
TRAIN_LOG = "train_log.jsonl"
TENSORBOARD_DIR = "runs"
EVAL_DIR = "eval"
MODEL_DIR = "model"
MERGED_DIR = "hf"
MODELFILE = "Modelfile"
FEEDBACK_FILE = "feedback.sqlite"
JUDGEMENTS_FILE = "can_you_tell.sqlite"   # the "Can you tell?" page's rounds and friends' picks
REPORT_FILE = "report.json"
ADAPTER_CONFIG = "adapter_config.json"

SPLITS = ("train", "valid", "test")

_PREFIX = "twin-"
_LORA_PREFIX = "twin-lora-"
_GGUF = ".gguf"
_QUANT_RE = re.compile(r"^[A-Za-z0-9_]+$")


def split_file(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    return f"{split}.jsonl"


def model_gguf_name(quant: str) -> str:
    """``twin-<QUANT>.gguf``: the exported model (``Q4_K_M``, ``Q8_0``, ``F16`` ...)."""
    quant = quant.upper()
    if not _QUANT_RE.match(quant) or quant.startswith("LORA"):
        raise ValueError(f"not a quantization name: {quant!r}")
    return f"{_PREFIX}{quant}{_GGUF}"


def lora_gguf_name(outtype: str) -> str:
    """``twin-lora-<TYPE>.gguf``: the adapter alone, for ``llama-cli -m base.gguf --lora``."""
    return f"{_LORA_PREFIX}{outtype.upper()}{_GGUF}"


def is_lora_gguf(path: Path | str) -> bool:
    name = Path(path).name
    return name.startswith(_LORA_PREFIX) and name.endswith(_GGUF)


def is_model_gguf(path: Path | str) -> bool:
    name = Path(path).name
    return name.startswith(_PREFIX) and name.endswith(_GGUF) and not is_lora_gguf(name) \
        and not name.startswith(".")


def model_ggufs(model_dir: Path) -> list[Path]:
    """The exported model GGUFs in ``model_dir`` (never a LoRA adapter), oldest first."""
    if not Path(model_dir).is_dir():
        return []
    found = [p for p in Path(model_dir).iterdir() if p.is_file() and is_model_gguf(p)]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


# An exported GGUF's ``general.name`` carries the persona, so a GGUF served alone still builds
# the system line it was trained with (the rules and sampling travel in GGUF_KEY_* below).
def gguf_model_name(persona: str) -> str:
    return _PREFIX + persona


def persona_from_gguf_name(name: str | None) -> str | None:
    if name and name.startswith(_PREFIX) and len(name) > len(_PREFIX):
        return name[len(_PREFIX):]
    return None


# twin's own keys in the GGUF metadata: what `twin serve --model FILE.gguf` needs without the
# workspace. Values are JSON text (gguf strings), read back with core.settings.
GGUF_KEY_PERSONA = "twin.persona"
GGUF_KEY_RULES = "twin.data_rules"
GGUF_KEY_SAMPLING = "twin.sampling"
# The knowledge base and contact groups (dataprocess.memory.Memory, JSON).
GGUF_KEY_MEMORY = "twin.memory"
# The content fingerprint of the adapter a GGUF was exported from (core.base_ref.adapter_fingerprint):
# `twin eval` measures the exported model only when it is the twin trained now.
GGUF_KEY_ADAPTER = "twin.adapter_fingerprint"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

"""The workspace directory every stage reads and writes, and its settings file ``twin.toml``.

Stages talk only through files here, so each can be rerun alone::

    twin.toml   choices made (persona, rules, base model), written by process, read by all
    data/       train.jsonl valid.jsonl test.jsonl report.json
    adapter/    PEFT adapter + tokenizer (checkpoints/ for resume)
    eval/       report.json
    model/      merged HF model, twin-<QUANT>.gguf, Modelfile
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from .atomic import atomic_file

SETTINGS_FILE = "twin.toml"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename: never a half-written file."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def user_cache_dir() -> Path:
    """Where twin keeps converted models: ``$TWIN_CACHE`` or ``$XDG_CACHE_HOME/twin``."""
    if os.environ.get("TWIN_CACHE"):
        return Path(os.environ["TWIN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twin"


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # accept str too

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def adapter_dir(self) -> Path:
        return self.root / "adapter"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    def split_path(self, split: str) -> Path:
        return self.data_dir / f"{split}.jsonl"

    def load_settings(self) -> dict:
        """The settings; an empty dict when ``twin process`` has not run yet."""
        try:
            return tomllib.loads(self.settings_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def update_settings(self, section: str, values: dict) -> None:
        """Replace one ``[section]`` of twin.toml, keeping the others."""
        settings = self.load_settings()
        settings[section] = {k: v for k, v in values.items() if v is not None}
        write_atomic(self.settings_path, tomli_w.dumps(settings).encode("utf-8"))

    def persona(self) -> str:
        return self.load_settings().get("persona", {}).get("name", "me")

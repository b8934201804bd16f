"""The workspace directory every stage reads and writes (names from ``core.artifacts``).

A :class:`Workspace` knows where each stage's files are and reads and writes ``twin.toml``
through :class:`~core.settings.Settings`. The ``require_*`` methods give the one-line
"run `twin <stage>` first" error (exit 2) that every command shows for a missing step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import artifacts
from .errors import InputError
from .settings import Settings


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # accept str too

    @property
    def settings_path(self) -> Path:
        return self.root / artifacts.SETTINGS_FILE

    @property
    def data_dir(self) -> Path:
        return self.root / artifacts.DATA_DIR

    @property
    def adapter_dir(self) -> Path:
        return self.root / artifacts.ADAPTER_DIR

    @property
    def checkpoints_dir(self) -> Path:
        return self.adapter_dir / artifacts.CHECKPOINTS_DIR

    @property
    def eval_dir(self) -> Path:
        return self.root / artifacts.EVAL_DIR

    @property
    def model_dir(self) -> Path:
        return self.root / artifacts.MODEL_DIR

    @property
    def merged_dir(self) -> Path:
        return self.model_dir / artifacts.MERGED_DIR

    @property
    def feedback_path(self) -> Path:
        return self.root / artifacts.FEEDBACK_FILE

    def split_path(self, split: str) -> Path:
        return self.data_dir / artifacts.split_file(split)

    def model_gguf(self, quant: str) -> Path:
        return self.model_dir / artifacts.model_gguf_name(quant)

    def lora_gguf(self, outtype: str) -> Path:
        return self.model_dir / artifacts.lora_gguf_name(outtype)

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> Settings:
        """The typed settings; defaults when ``twin process`` has not run yet."""
        return Settings.load(self.settings_path)

    def save_settings(self, settings: Settings) -> None:
        settings.save(self.settings_path)

    def persona(self) -> str:
        return self.settings().persona.name

    # -- what a stage needs from the ones before it ---------------------------------------------
    def require_exists(self) -> None:
        if not self.root.is_dir():
            raise InputError(f"workspace {self.root} does not exist: run `twin process EXPORT... "
                             f"--workspace {self.root}` first")

    def require_data(self, split: str = "train") -> Path:
        self.require_exists()
        path = self.split_path(split)
        if not path.is_file():
            raise InputError(f"no {path}: run `twin process EXPORT... --workspace {self.root}` first")
        return path

    def require_adapter(self) -> Path:
        self.require_exists()
        if not (self.adapter_dir / artifacts.ADAPTER_CONFIG).is_file():
            raise InputError(f"no trained adapter in {self.adapter_dir}: run `twin train --workspace "
                             f"{self.root}` first")
        return self.adapter_dir

    def newest_model_gguf(self) -> Path:
        """The newest exported model GGUF (a LoRA GGUF is never taken for a model)."""
        self.require_exists()
        found = artifacts.model_ggufs(self.model_dir)
        if not found:
            lora = " (there is only a LoRA adapter GGUF: export the model without --lora-only)" \
                if any(artifacts.is_lora_gguf(p) for p in self.model_dir.glob("*.gguf")) else ""
            raise InputError(f"no exported model in {self.model_dir}{lora}: run `twin export --workspace "
                             f"{self.root}` first")
        return found[-1]

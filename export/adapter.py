"""A trained PEFT LoRA adapter as export reads it: per module, the pair (A, B) and its scale.

Owns the reading of ``adapter_config.json`` + ``adapter_model.safetensors`` (PEFT's format)
and the arithmetic both writers share: the merge adds ``scale * B @ A`` to each adapted
weight (``delta``), the LoRA GGUF writes A and B with one ``alpha`` (``pairs``/``scales``).
The scale is PEFT's: ``lora_alpha / r``, or ``lora_alpha / sqrt(r)`` with rsLoRA, with
``rank_pattern`` / ``alpha_pattern`` overrides per module. Whole tensors the adapter saved
(``modules_to_save``, resized embeddings) replace the base's (``replacements``).

An adapter is small next to its base (megabytes): it is read whole, in float32.
DoRA adapters and LoRA biases raise ``UnsupportedModelError``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.artifacts import ADAPTER_CONFIG
from export.errors import ExportInputError, UnsupportedModelError

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")

_LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<emb>embedding_)?(?P<ab>[AB])(?:\.[^.]+)?(?:\.weight)?$")
_PREFIX = "base_model.model."


def _pattern_value(pattern: dict[str, Any] | None, module: str, default: Any) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches the end of the module name."""
    for key, value in (pattern or {}).items():
        if module == key or module.endswith("." + key) or re.fullmatch(key, module):
            return value
    return default


def read_adapter_config(adapter_dir: Path | str) -> dict[str, Any]:
    path = Path(adapter_dir) / ADAPTER_CONFIG
    if not path.is_file():
        raise ExportInputError(f"no PEFT adapter in {adapter_dir} ({ADAPTER_CONFIG} is missing)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportInputError(f"{path} is not valid JSON: {exc}") from None


def adapter_base(adapter_dir: Path | str) -> str:
    """The base model named in ``adapter_dir/adapter_config.json`` (a path or a hub id)."""
    base = read_adapter_config(adapter_dir).get("base_model_name_or_path")
    if not base:
        raise ExportInputError(f"{Path(adapter_dir) / ADAPTER_CONFIG} names no base_model_name_or_path; "
                               "pass the base with --base")
    return str(base)


@dataclass
class LoraAdapter:
    """A PEFT LoRA adapter, read whole (see the module docstring)."""

    path: Path
    config: dict[str, Any]
    pairs: dict[str, dict[str, Any]]          # module -> {"A": tensor, "B": tensor}
    embedding_modules: set[str] = field(default_factory=set)   # LoRA on an nn.Embedding
    replacements: dict[str, Any] = field(default_factory=dict)  # base tensor name -> tensor

    @classmethod
    def load(cls, adapter_dir: Path | str) -> "LoraAdapter":
        adapter_dir = Path(adapter_dir)
        config = read_adapter_config(adapter_dir)
        peft_type = str(config.get("peft_type", "LORA")).upper()
        if peft_type != "LORA":
            raise UnsupportedModelError(f"the adapter in {adapter_dir} is {peft_type}, not LoRA")
        if config.get("use_dora"):
            raise UnsupportedModelError("DoRA adapters are not supported by the export")
        if config.get("lora_bias") or config.get("bias", "none") not in ("none", None):
            raise UnsupportedModelError("adapters with trained biases are not supported by the export")
        pairs: dict[str, dict[str, Any]] = {}
        embedding: set[str] = set()
        replacements: dict[str, Any] = {}
        for key, tensor in _read_tensors(adapter_dir).items():
            m = _LORA_KEY.match(key)
            if m is None:  # a whole module saved with the adapter (modules_to_save, embeddings)
                name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
                replacements[name.replace(".modules_to_save.default.", ".")] = tensor
                continue
            pairs.setdefault(m["module"], {})[m["ab"]] = tensor
            if m["emb"]:
                embedding.add(m["module"])
        for module, ab in pairs.items():
            if set(ab) != {"A", "B"}:
                raise ExportInputError(f"the adapter has lora_{''.join(ab)} but not both matrices for {module}")
            a, b = ab["A"], ab["B"]
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
                raise ExportInputError(f"LoRA matrices of {module} have shapes {tuple(a.shape)} and {tuple(b.shape)}")
        if not pairs and not replacements:
            raise ExportInputError(f"the adapter in {adapter_dir} has no LoRA weights")
        return cls(adapter_dir, config, pairs, embedding, replacements)

    # -- scales -----------------------------------------------------------------------------
    def rank_alpha(self, module: str) -> tuple[int, float]:
        r_default = int(self.config.get("r", 8))
        rank = int(_pattern_value(self.config.get("rank_pattern"), module, r_default))
        alpha = float(_pattern_value(self.config.get("alpha_pattern"), module,
                                     float(self.config.get("lora_alpha", r_default))))
        return rank, alpha

    def scale(self, module: str) -> float:
        """PEFT's ``scaling`` of ``module``: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        rank, alpha = self.rank_alpha(module)
        return alpha / (math.sqrt(rank) if self.config.get("use_rslora") else rank)

    def single_alpha(self) -> float | None:
        """The one ``alpha`` with ``scale == alpha / rank`` for every module, or None when
        the modules need different ones (rsLoRA, per-module patterns)."""
        alphas = {round(self.scale(m) * self.rank_alpha(m)[0], 6) for m in self.pairs}
        if self.config.get("use_rslora") or len(alphas) != 1:
            return None
        return alphas.pop()

    # -- the merge --------------------------------------------------------------------------
    def module_of(self, weight_name: str) -> str | None:
        """The adapted module whose weight is ``weight_name`` (``...q_proj.weight``), if any."""
        if not weight_name.endswith(".weight"):
            return None
        module = weight_name[: -len(".weight")]
        return module if module in self.pairs else None

    def delta(self, module: str, rows: slice | None = None):
        """``scale * B @ A`` in float32, shaped like the module's weight (torch tensor), or
        the given slice of its rows."""
        a, b = self.pairs[module]["A"], self.pairs[module]["B"]
        rows = rows if rows is not None else slice(None)
        if module in self.embedding_modules:  # nn.Embedding's weight is (num, dim): (B @ A).T
            product = a[:, rows].T @ b.T
        else:
            product = b[rows] @ a
        return product * self.scale(module)


def _read_tensors(adapter_dir: Path) -> dict[str, Any]:
    import torch

    path = adapter_dir / ADAPTER_WEIGHTS[0]
    if path.is_file():
        from safetensors.torch import load_file

        return {k: v.to(torch.float32) for k, v in load_file(str(path)).items()}
    path = adapter_dir / ADAPTER_WEIGHTS[1]
    if path.is_file():
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        return {k: v.to(torch.float32) for k, v in state.items()}
    raise ExportInputError(f"no adapter weights ({' or '.join(ADAPTER_WEIGHTS)}) in {adapter_dir}")

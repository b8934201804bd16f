"""Merge a trained PEFT (LoRA) adapter into its base model and save a plain HF model.

The base is loaded in full precision (float32 on CPU), even when the adapter was trained
with QLoRA on a 4/8-bit base, so the merged weights are not rounded twice. The output
directory holds ``config.json``, ``model.safetensors`` (or shards), the generation config
and the tokenizer the trainer saved beside the adapter (with its chat template and pad
token), i.e. everything ``export.gguf_writer`` and transformers need. It is built in a
temporary sibling directory and renamed into place.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from core.atomic import atomic_dir
from export.errors import ExportError

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(adapter_dir: Path | str) -> str:
    """The base model named in ``adapter_dir/adapter_config.json``."""
    cfg_path = Path(adapter_dir) / ADAPTER_CONFIG
    if not cfg_path.is_file():
        raise ExportError(f"no PEFT adapter in {adapter_dir} ({ADAPTER_CONFIG} is missing)")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{cfg_path} is not valid JSON: {exc}") from exc
    base = config.get("base_model_name_or_path")
    if not base:
        raise ExportError(f"{cfg_path} names no base_model_name_or_path; pass the base explicitly")
    return str(base)


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()


def merge_adapter(adapter_dir: Path | str, out_dir: Path | str,
                  base_dir: Path | str | None = None) -> Path:
    """Merge the LoRA adapter in ``adapter_dir`` into its base; save the result to ``out_dir``.

    The base comes from ``base_dir`` if given, else from the adapter's
    ``base_model_name_or_path``. The tokenizer is taken from ``adapter_dir`` (falling back
    to the base's). ``out_dir`` is replaced atomically. Returns ``out_dir``.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if base_dir is None:
        base = adapter_base(adapter_dir)
    else:
        if not (adapter_dir / ADAPTER_CONFIG).is_file():
            raise ExportError(f"no PEFT adapter in {adapter_dir} ({ADAPTER_CONFIG} is missing)")
        if not Path(base_dir).is_dir():
            raise ExportError(f"base model directory {base_dir} does not exist")
        base = str(base_dir)

    tok_source = adapter_dir if _has_tokenizer(adapter_dir) else Path(base)
    if tok_source != adapter_dir:
        log.warning("no tokenizer saved in %s; using the base model's from %s", adapter_dir, base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_source)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot load the tokenizer from {tok_source}: {exc}") from exc

    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    except OSError as exc:
        raise ExportError(f"cannot load base model {base!r} (from {adapter_dir / ADAPTER_CONFIG}): "
                          f"{str(exc).splitlines()[0]}") from exc

    # A trainer that added tokens (e.g. a pad token) saves the resized embeddings with the
    # adapter; give the base the same number of rows before loading it.
    n_rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > n_rows:
        model.resize_token_embeddings(len(tokenizer))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir), torch_device="cpu")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"cannot apply the adapter in {adapter_dir} to {base!r}: "
                          f"{str(exc).splitlines()[0]}") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecation chatter from peft/transformers
        merged = peft_model.merge_and_unload()
    merged.eval()
    # the merged model is a plain base-architecture model; drop PEFT bookkeeping
    if hasattr(merged.config, "_name_or_path"):
        merged.config._name_or_path = out_dir.name

    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    log.info("merged %s into %s -> %s", adapter_dir, base, out_dir)
    return out_dir

"""The merged model as a Hugging Face directory (``twin export --keep-merged``), tensor by tensor.

Each weight is ``W + scale * B @ A`` computed in float32 from the memory-mapped base and the
adapter (``export.weights``), then stored in the base's own dtype (bf16 stays bf16): the copy
is the size of the base, never an fp32 blow-up. Shards of at most ``max_shard_bytes`` are
written with ``safetensors`` plus the ``model.safetensors.index.json`` transformers reads, so
at most one shard is held in memory. The directory also gets the base's config (vocabulary
size updated if the trainer added tokens), its generation config and the tokenizer saved
beside the adapter. It is built in a temporary sibling and renamed into place.

The export itself does not need this copy: the GGUF is written straight from the base and
the adapter.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from core.atomic import atomic_dir
from export.adapter import adapter_base  # noqa: F401 (re-exported: the base named in an adapter)
from export.weights import ModelSource

log = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 512 << 20  # safetensors serializes a shard in memory: keep it small
_COPIED = ("generation_config.json",)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                    "chat_template.jinja", "added_tokens.json", "vocab.json", "merges.txt")


def merge_adapter(adapter_dir: Path | str, out_dir: Path | str, base_dir: Path | str | None = None, *,
                  max_shard_bytes: int = DEFAULT_SHARD_BYTES, source: ModelSource | None = None) -> Path:
    """Merge the LoRA adapter in ``adapter_dir`` into its base; save the result to ``out_dir``.

    The base comes from ``base_dir`` if given, else from the adapter's
    ``base_model_name_or_path``. ``out_dir`` is replaced atomically. Returns ``out_dir``.
    """
    import torch
    from safetensors.torch import save_file

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if source is None:
        source = ModelSource(Path(base_dir) if base_dir is not None else Path(adapter_base(adapter_dir)),
                             adapter_dir)
    dtype = source.dtype
    names = source.names()
    with atomic_dir(out_dir) as tmp:
        shards: list[list[str]] = [[]]
        sizes = [0]
        for name in names:  # plan the shards from the headers
            n_bytes = torch.Size(source.shape(name)).numel() * dtype.itemsize
            if shards[-1] and sizes[-1] + n_bytes > max_shard_bytes:
                shards.append([])
                sizes.append(0)
            shards[-1].append(name)
            sizes[-1] += n_bytes
        weight_map: dict[str, str] = {}
        for i, shard in enumerate(shards):
            file = "model.safetensors" if len(shards) == 1 else \
                f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            state = {}
            for name in shard:
                tensor = source.tensor(name)
                state[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
                del tensor
                weight_map[name] = file
            save_file(state, str(tmp / file), metadata={"format": "pt"})
            del state
        if len(shards) > 1:
            index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
        config = json.loads((source.base_dir / "config.json").read_text(encoding="utf-8"))
        config["vocab_size"] = source.spec.n_vocab if "text_config" not in config else config["vocab_size"]
        config["_name_or_path"] = out_dir.name
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        for name in _COPIED:
            if (source.base_dir / name).is_file():
                shutil.copy2(source.base_dir / name, tmp / name)
        for name in _TOKENIZER_FILES:
            if (source.tokenizer_dir / name).is_file():
                shutil.copy2(source.tokenizer_dir / name, tmp / name)
    log.info("merged %s into %s -> %s (%s, %d shard(s))", adapter_dir, source.base_dir, out_dir, dtype, len(shards))
    return out_dir

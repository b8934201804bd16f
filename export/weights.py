"""The model as export reads it: a base checkpoint, with a LoRA adapter merged in, one tensor at a time.

Memory stays bounded by the largest single tensor, never the whole model: the base's
safetensors shards are opened per tensor (safetensors memory-maps the file and the mapping
is closed again right after, so the pages read do not pile up in the process's resident
memory), the tensor is converted to float32, the adapter's ``scale * B @ A`` is added
(``export.adapter``), and the caller writes it out before asking for the next one. The GGUF
writer and the merged-HF writer both read through :class:`ModelSource`.

Legacy ``pytorch_model*.bin`` checkpoints are memory-mapped with ``torch.load(mmap=True)``
(their pages stay mapped for the whole export).
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from export.adapter import LoraAdapter
from export.arch import ModelSpec, model_spec, read_config
from export.errors import ExportInputError

log = logging.getLogger(__name__)

_ST_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
              "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()


class CheckpointWeights:
    """The tensors of a Hugging Face checkpoint directory: names and shapes from the file
    headers, data read one tensor at a time."""

    def __init__(self, model_dir: Path | str):
        import torch

        self.model_dir = Path(model_dir)
        self._file: dict[str, Path] = {}
        self._shape: dict[str, tuple[int, ...]] = {}
        self._dtype: dict[str, Any] = {}
        self._bin: dict[Path, dict[str, Any]] = {}
        files = sorted(self.model_dir.glob("*.safetensors"))
        if files:
            from safetensors import safe_open

            for path in files:
                with safe_open(str(path), framework="pt") as handle:
                    for name in handle.keys():
                        sl = handle.get_slice(name)
                        self._file[name] = path
                        self._shape[name] = tuple(int(d) for d in sl.get_shape())
                        self._dtype[name] = getattr(torch, _ST_DTYPES.get(sl.get_dtype(), "float32"))
            return
        for path in sorted(self.model_dir.glob("pytorch_model*.bin")):
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            self._bin[path] = state
            for name, tensor in state.items():
                self._file[name] = path
                self._shape[name] = tuple(tensor.shape)
                self._dtype[name] = tensor.dtype
        if not self._file:
            raise ExportInputError(f"no model weights (*.safetensors or pytorch_model*.bin) in {self.model_dir}")

    def names(self) -> list[str]:
        return list(self._file)

    def __contains__(self, name: str) -> bool:
        return name in self._file

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shape[name]

    def dtype(self, name: str):
        return self._dtype[name]

    def load(self, name: str, rows: slice | None = None):
        """Tensor ``name`` (or a slice of its rows) as a float32 torch tensor of its own
        memory, the file closed again."""
        import torch

        path = self._file[name]
        if path in self._bin:
            tensor = self._bin[path][name]
            return (tensor if rows is None else tensor[rows]).to(torch.float32, copy=True)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            tensor = handle.get_tensor(name) if rows is None else handle.get_slice(name)[rows]
            return tensor.to(torch.float32, copy=True)


class ModelSource:
    """A base model with (optionally) a LoRA adapter merged in, read tensor by tensor.

    ``tensor(name)`` is ``W + scale * B @ A`` in float32 for an adapted weight, the adapter's
    saved tensor for a module it replaces, else the base weight. The tokenizer is the one
    saved beside the adapter (the trainer's, with its chat template and pad token), else the
    base's.
    """

    def __init__(self, base_dir: Path | str, adapter_dir: Path | str | None = None):
        self.base_dir = Path(base_dir)
        self.adapter_dir = Path(adapter_dir) if adapter_dir is not None else None
        self.config = read_config(self.base_dir)
        self.spec: ModelSpec = model_spec(self.config, self.base_dir)  # refuse early, before reading weights
        self.weights = CheckpointWeights(self.base_dir)
        self.adapter = LoraAdapter.load(self.adapter_dir) if self.adapter_dir is not None else None
        if self.adapter_dir is not None and has_tokenizer(self.adapter_dir):
            self.tokenizer_dir = self.adapter_dir
        else:
            self.tokenizer_dir = self.base_dir
            if self.adapter_dir is not None:
                log.warning("no tokenizer saved in %s; using the base model's", self.adapter_dir)
        self._check_fit()

    def _check_fit(self) -> None:
        if self.adapter is None:
            return
        for module in self.adapter.pairs:
            weight = module + ".weight"
            if weight not in self.weights:
                raise ExportInputError(f"the adapter in {self.adapter_dir} adapts {module}, which the base "
                                       f"model in {self.base_dir} does not have: is it the base it was trained on?")
            a, b = self.adapter.pairs[module]["A"], self.adapter.pairs[module]["B"]
            want = self.weights.shape(weight)
            got = (a.shape[1], b.shape[0]) if module in self.adapter.embedding_modules else (b.shape[0], a.shape[1])
            if tuple(got) != tuple(want) and self.adapter.replacements.get(weight) is None:
                raise ExportInputError(f"the adapter's {module} is {tuple(got)} but the base's is {tuple(want)}: "
                                       f"the adapter in {self.adapter_dir} was not trained on {self.base_dir}")
        for name, tensor in self.adapter.replacements.items():
            if name not in self.weights:
                raise ExportInputError(f"the adapter saves {name}, which the base model does not have")
            rows = int(tensor.shape[0])
            if self.spec.gguf_name(name) in ("token_embd.weight", "output.weight") and rows > self.spec.n_vocab:
                # the trainer added tokens (e.g. a pad token) and saved the resized embeddings
                self.config = {**self.config, "vocab_size": rows}
                self.spec.n_vocab = rows
                self.spec.config = self.config

    # -- what the writers ask -----------------------------------------------------------------
    def names(self) -> list[str]:
        return self.weights.names()

    def shape(self, name: str) -> tuple[int, ...]:
        if self.adapter is not None and name in self.adapter.replacements:
            return tuple(self.adapter.replacements[name].shape)
        return self.weights.shape(name)

    def tensor(self, name: str, rows: slice | None = None):
        """Tensor ``name`` of the merged model (or a slice of its rows), float32 (torch)."""
        if self.adapter is not None and name in self.adapter.replacements:
            whole = self.adapter.replacements[name]
            base = (whole if rows is None else whole[rows]).clone()
        else:
            base = self.weights.load(name, rows)
        module = self.adapter.module_of(name) if self.adapter is not None else None
        if module is not None:
            base += self.adapter.delta(module, rows)
        return base

    def tensors(self) -> Iterator[tuple[str, Any]]:
        for name in self.names():
            yield name, self.tensor(name)

    @property
    def dtype(self):
        """The base checkpoint's (most common) floating dtype: what a merged copy is saved in."""
        counts = Counter(self.weights.dtype(n) for n in self.names() if self.weights.dtype(n).is_floating_point)
        return counts.most_common(1)[0][0]

    def n_params(self) -> int:
        total = 0
        for name in self.names():
            n = 1
            for dim in self.shape(name):
                n *= dim
            total += n
        return total

"""How a base model is held in memory while it is trained: quantization, dtypes, optimizer.

:func:`plan_memory` makes every choice that decides whether a model fits:

- ``--quant auto``: 4-bit NF4 QLoRA (double quantization) on a GPU for models of 1B parameters
  and up, plain LoRA otherwise (on CPU full precision is faster, and small models fit anyway).
- A quantized model is loaded straight into its low-bit form from its 16-bit weights, with the
  layers that stay unquantized (embeddings, norms) in bfloat16: no float32 copy of the model
  ever exists, on CPU either. Unquantized training on CPU stays float32 (the fast path there).
- On a GPU, 4-bit training uses paged 8-bit AdamW (``paged_adamw_8bit``, bitsandbytes): the
  optimizer state of the adapter in 8 bits, paged out to CPU memory under pressure.
- Gradient checkpointing (recompute activations in the backward pass) for quantized models and
  for every model of 1B parameters and up; below that, the ~30% speed it costs buys nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

QUANT_CHOICES = ("auto", "4bit", "8bit", "none")
BIG_MODEL_PARAMS = 1_000_000_000


@dataclass(frozen=True)
class MemoryPlan:
    quant: str                     # "4bit", "8bit" or "none"
    dtype: str                     # torch dtype name the weights are loaded (and computed) in
    gradient_checkpointing: bool
    optim: str | None = None       # a transformers optimizer name; None: the trainer's default


def choose_quant(requested: str, cuda: bool, n_params: int | None = None) -> str:
    """Resolve ``auto`` (see the module docstring)."""
    if requested not in QUANT_CHOICES:
        raise ValueError(f"unknown quantization {requested!r}; choose from {', '.join(QUANT_CHOICES)}")
    if requested != "auto":
        return requested
    if cuda and (n_params is None or n_params >= BIG_MODEL_PARAMS):
        return "4bit"
    return "none"


def plan_memory(requested: str, *, cuda: bool, n_params: int | None, bf16_supported: bool = True) -> MemoryPlan:
    """Every memory choice for training a model of ``n_params`` parameters (None: unknown)."""
    quant = choose_quant(requested, cuda, n_params)
    big = n_params is not None and n_params >= BIG_MODEL_PARAMS
    if cuda:
        dtype = "bfloat16" if bf16_supported else "float32"
    else:
        dtype = "float32" if quant == "none" else "bfloat16"
    return MemoryPlan(quant=quant, dtype=dtype, gradient_checkpointing=quant != "none" or big,
                      optim="paged_adamw_8bit" if cuda and quant == "4bit" else None)


def quantization_config(quant: str, compute_dtype):
    """A transformers ``BitsAndBytesConfig`` for ``quant``, or None for full precision."""
    if quant == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quant == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute_dtype)
    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"unknown quantization {quant!r}; choose from {', '.join(QUANT_CHOICES)}")

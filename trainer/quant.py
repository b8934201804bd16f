"""Choosing and configuring weight quantization for training (QLoRA 4-bit, 8-bit, or none)."""
from __future__ import annotations

QUANT_CHOICES = ("auto", "4bit", "8bit", "none")


def choose_quant(requested: str, cuda: bool, n_params: int | None = None) -> str:
    """Resolve ``auto``: 4-bit NF4 QLoRA on a GPU for models of 1B parameters and up,
    plain LoRA otherwise (on CPU full precision is faster and small models fit anyway)."""
    if requested != "auto":
        return requested
    if cuda and (n_params is None or n_params >= 1_000_000_000):
        return "4bit"
    return "none"


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

"""Scoring only the reply tokens in TRL's LM head on CPU, where most tokens are prompt.

TRL's ``SFTTrainer`` computes the loss with a fused LM head that projects hidden states to
the vocabulary in tiles instead of building the full logits. It can project only the
positions that have a label (the reply; the prompt is masked with -100), but does so only
where its Triton kernels run (CUDA, XPU): elsewhere it projects every position, so that tile
shapes stay fixed for devices that recompile on new shapes (Neuron). On CPU nothing
recompiles, and in chat data the prompt (system line plus earlier turns) is ~80% of the
tokens, so projecting every position spends most of the LM head's work (49k-way for
SmolLM2) on tokens whose scores are thrown away. Measured by bench/bench_train.py: 1.3-1.4x
training tokens/s on the sample, identical loss (the same positions are scored either way).

TRL has no option for this. Its public options (TRL 1.16) are all in use already and none
chooses which positions the LM head projects: ``padding_free`` and ``completion_only_loss`` (on
in ``trainer.train``), ``loss_type`` (``"nll"``, the default; ``"dft"`` reweights the loss).
With those alone, ``bench/bench_train.py --steps 20 --variants "twin train,twin train (full LM
head)"`` measured 87.7 tokens/s, 1.83x plain TRL's 47.8, against 115.4 (2.41x) with this
module, at the same validation loss (4.439 both): below the 2x that twin's training promises,
so the module stays. TRL's choice is the module-level ``_use_triton(device)`` that the fused
forward calls, so ``score_reply_positions_only`` wraps that one name to say yes for CPU
devices as well. The Triton kernels themselves are chosen by another function in
``trl.kernels`` and are unaffected. If a TRL upgrade removes the name, training goes on
unchanged (slower) and ``score_reply_positions_only`` returns False.
"""
from __future__ import annotations


def score_reply_positions_only() -> bool:
    """Make TRL's fused LM head project only labelled positions on CPU too; True if in effect."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or not callable(original):
        return False
    if getattr(original, "twin_reply_only", False):
        return True

    def use_compact_path(device) -> bool:
        return device.type == "cpu" or original(device)

    use_compact_path.twin_reply_only = True
    use_compact_path.original = original
    trl_utils._use_triton = use_compact_path
    return True

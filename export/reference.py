"""transformers' logits of the merged model, with one layer's weights in memory at a time.

The parity check's reference side (``twin export --verify full``). The model is built by
transformers from its config with empty (meta) weights (``accelerate.init_empty_weights``,
buffers such as RoPE tables real), and each module receives its weights from
``export.weights.ModelSource`` (``W + scale * B @ A`` in float32, the very tensors the GGUF
is converted from, re-read from the memory-mapped checkpoint) just before it runs; they are
dropped again right after. All prompts go through in one right-padded batch, so the
checkpoint is read once. A vocabulary-sized embedding looks up only the rows the prompts
use, and a vocabulary-sized output layer multiplies a slice of rows at a time.

Memory: about one layer in float32 plus the activations, whatever the model's size, instead
of a whole model. (accelerate's disk offload also streams weights layer by layer, but from
copies in the stored dtype; here each weight must be the merge, in float32, which only
``ModelSource`` computes, so the few hooks below do the loading.)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from export.weights import ModelSource

SLICE_BYTES = 64 << 20   # a bigger float32 weight (vocabulary-sized) is read a slice of rows at a time


def _checkpoint_names(model, source: ModelSource) -> dict[int, str]:
    """id(parameter) -> the checkpoint tensor holding it (tied parameters share one)."""
    names = set(source.names())
    found: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if name in names:
            found.setdefault(id(param), name)
    output, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if output is not None and id(output.weight) not in found and id(embed.weight) in found:
        found[id(output.weight)] = found[id(embed.weight)]  # tied: the checkpoint stores it once
    missing = [n for n, p in model.named_parameters() if id(p) not in found]
    if missing:
        from export.errors import ExportInputError

        raise ExportInputError(f"the checkpoint in {source.base_dir} lacks {', '.join(missing[:3])}"
                               f"{' ...' if len(missing) > 3 else ''}")
    return found


def _too_big(param) -> bool:
    return param.numel() * 4 > SLICE_BYTES


def _load_on_call(module, params: dict[str, str], source: ModelSource) -> None:
    """Give ``module`` its float32 weights while it runs, meta placeholders otherwise."""
    import torch

    placeholders = dict(module._parameters)

    def before(mod, args):
        for local, name in params.items():
            mod._parameters[local] = torch.nn.Parameter(source.tensor(name), requires_grad=False)

    def after(mod, args, output):
        mod._parameters.update(placeholders)

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)


def _embedding_rows_only(module, name: str, source: ModelSource) -> None:
    """A vocabulary-sized embedding: build a small table of just the rows asked for."""
    import torch

    placeholder = module._parameters["weight"]
    n_rows = placeholder.shape[0]
    step = max(1, SLICE_BYTES // (4 * placeholder.shape[1]))

    def before(mod, args):
        ids = args[0]
        wanted, index = torch.unique(ids, return_inverse=True)
        rows = torch.empty(len(wanted), placeholder.shape[1])
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            hit = (wanted >= start) & (wanted < stop)
            if hit.any():
                rows[hit] = source.tensor(name, slice(start, stop))[wanted[hit] - start]
        mod._parameters["weight"] = torch.nn.Parameter(rows, requires_grad=False)
        mod.padding_idx = None  # ids are positions in the small table now
        return (index.reshape(ids.shape), *args[1:])

    def after(mod, args, output):
        mod._parameters["weight"] = placeholder

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)


def _linear_by_slices(module, params: dict[str, str], source: ModelSource) -> None:
    """A vocabulary-sized output layer: ``x @ W.T`` a slice of W's rows at a time."""
    import torch

    n_out, n_in = module.weight.shape
    step = max(1, SLICE_BYTES // (4 * n_in))
    name, bias = params["weight"], params.get("bias")

    def forward(x):
        x = x.float()
        out = torch.empty(*x.shape[:-1], n_out)
        for start in range(0, n_out, step):
            stop = min(n_out, start + step)
            out[..., start:stop] = x @ source.tensor(name, slice(start, stop)).T
        return out if bias is None else out + source.tensor(bias)

    module.forward = forward


def streamed_logits(source: ModelSource, batches: list[list[int]]) -> list[np.ndarray]:
    """transformers' next-token logits (float32) of ``source``'s merged model for each batch."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source.base_dir)
    text_config = getattr(config, "text_config", None) or config
    text_config.vocab_size = source.spec.n_vocab  # rows added by the trainer, if any
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    where = _checkpoint_names(model, source)
    for module in model.modules():
        own = {local: where[id(p)] for local, p in module._parameters.items() if p is not None}
        if not own:
            continue
        if isinstance(module, torch.nn.Embedding) and _too_big(module.weight):
            _embedding_rows_only(module, own["weight"], source)
        elif isinstance(module, torch.nn.Linear) and _too_big(module.weight):
            _linear_by_slices(module, own, source)
        else:
            _load_on_call(module, own, source)

    width = max(len(ids) for ids in batches)
    input_ids = torch.zeros(len(batches), width, dtype=torch.long)
    mask = torch.zeros(len(batches), width, dtype=torch.long)
    for row, ids in enumerate(batches):  # right padding: no real position sees a padded one
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    with torch.no_grad():
        logits: Any = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    return [logits[row, : len(ids)].float().numpy().copy() for row, ids in enumerate(batches)]

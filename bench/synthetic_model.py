"""The synthetic ~1.2B Llama the memory benches use (not a bench itself).

Shaped like Llama-3.2-1B (hidden 2048, 16 layers, 32 heads / 8 KV heads, MLP 8192, vocabulary
128,256, tied embeddings): random bfloat16 weights from a config with transformers, saved as
safetensors shards with the embedded model's tokenizer, in
``$TWIN_CACHE/bench/synthetic-llama-1.2b-tied``; built once (a few minutes, ~2.5 GB), then
reused. Random weights cost what real ones cost for memory and time: those depend on shapes.
"""
from __future__ import annotations

from pathlib import Path

SHAPE = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
             num_key_value_heads=8, vocab_size=128256, max_position_embeddings=4096, tie_word_embeddings=True,
             rope_theta=500000.0)


def default_path() -> Path:
    from core.base_ref import user_cache_dir

    return user_cache_dir() / "bench" / "synthetic-llama-1.2b-tied"


def synthetic_llama(target: Path | None = None) -> Path:
    """The synthetic model's directory, built on first use."""
    target = target or default_path()
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from core.atomic import atomic_dir
    from trainer.base_model import resolve_base

    tokenizer = AutoTokenizer.from_pretrained(resolve_base())  # the embedded model's tokenizer and template
    config = LlamaConfig(**SHAPE, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         dtype="bfloat16")
    print(f"building the synthetic model in {target} (once)...", flush=True)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    with torch.no_grad():  # random weights, in place, one tensor at a time
        for name, param in model.named_parameters():
            if "norm" in name:
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
    # to_empty() gave lm_head storage of its own: tie it again, or the checkpoint holds two
    # different 128k x 2048 matrices (1.5B parameters) that transformers then leaves untied.
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, max_shard_size="1GB")
        tokenizer.save_pretrained(tmp)
    return target

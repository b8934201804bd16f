"""Tiny, randomly initialised models and tokenizers built inside the tests.

Every model-path test uses these instead of downloading anything: a byte-level BPE
tokenizer trained in a fraction of a second on a few sentences (with ChatML special
tokens and chat template, like the default base model), and a causal LM of a chosen
llama-family architecture with a handful of small layers.
"""
from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "hello, how are you? omg hiii | im good just got back from climbing | u?",
    "want to get tacos tonight? bartaco? bet | see u at 7",
    "what's your name? maya lol",
    "you are maya. text back the way maya does. DONE",
    "system user assistant the a and of to in is it you that he was for on are with",
    "lowkey tired ngl | pickle says hi | ya fr lmaooo",
    "0123456789 .,!?'\"-:;()[]{}|/@#$%^&*+=<>~`_",
]


def build_tiny_tokenizer(out_dir: Path | str, vocab_size: int = 512):
    """Train a byte-level BPE tokenizer and save it (HF format) into ``out_dir``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_model(
    out_dir: Path | str,
    arch: str = "llama",
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    tie_word_embeddings: bool = True,
    seed: int = 0,
):
    """Build a tiny random causal LM of ``arch`` (llama, mistral, qwen2) plus tokenizer.

    Saves model (safetensors) and tokenizer into ``out_dir`` and returns ``out_dir``.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out_dir = Path(out_dir)
    tokenizer = build_tiny_tokenizer(out_dir)
    config = AutoConfig.for_model(
        arch,
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=512,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out_dir)
    return out_dir

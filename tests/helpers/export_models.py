"""Tiny random models of every family the export supports, their tokenizers and LoRA adapters.

Shared by the export tests (tests/export/). Each model is a few small layers built from a
config with transformers and saved locally; nothing is downloaded. Attention is sharpened and
norm weights randomised so that a wrong Q/K permutation, norm offset or norm mapping moves
the logits visibly (a tiny random model otherwise attends uniformly and hides such mistakes).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers.tiny import _CORPUS, build_tiny_model, build_tiny_tokenizer

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512)

# name -> (model_type, tokenizer kind, config overrides)
FAMILIES = {
    "llama": ("llama", "bpe", dict(tie_word_embeddings=True)),
    "mistral": ("mistral", "bpe", dict(tie_word_embeddings=False)),
    "qwen2": ("qwen2", "bpe", dict(tie_word_embeddings=True)),
    # head_dim 32 != hidden/heads: the GGUF must say so (key_length/value_length)
    "qwen3": ("qwen3", "bpe", dict(tie_word_embeddings=True, head_dim=32)),
    "phi3": ("phi3", "phi3", dict(tie_word_embeddings=False, sliding_window=None,
                                  original_max_position_embeddings=512)),
    # small soft-caps, so that leaving them out of the GGUF would show in the logits
    "gemma2": ("gemma2", "gemma", dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=256,
                                       attn_logit_softcapping=5.0, final_logit_softcapping=3.0)),
    # six layers: five local (RoPE base 10000) and one global (1e6), as Gemma 3 alternates
    "gemma3": ("gemma3_text", "gemma", dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=256,
                                            num_hidden_layers=6)),
}

SPM_TEMPLATE = (  # Mistral-instruct style
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}"
    "{% endfor %}")
PHI3_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n'"
    " + message['content'] + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_config(model: Path, **changes) -> Path:
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(changes)
    (model / "config.json").write_text(json.dumps(cfg))
    return model


def gguf_reader(path: Path):
    import gguf

    return gguf.GGUFReader(str(path))


def gguf_field(reader, key: str):
    return reader.fields[key].contents()


def sharpen(model_dir: Path, scale: float = 10.0, seed: int = 0) -> Path:
    """Scale q/k projections (so RoPE really shapes the logits) and randomise norm weights."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(k in name for k in (".q_proj.", ".k_proj.", ".qkv_proj.")):
                param.mul_(scale)
            elif "norm" in name:
                param.add_(torch.randn(param.shape, generator=gen) * 0.2)
    model.save_pretrained(model_dir)
    return model_dir


def _learned_pieces(prepend: str = "always", n_pieces: int = 320) -> tuple[list[str], list[str]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme=prepend, split=True)
    learner.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(vocab_size=n_pieces, show_progress=False))
    learned = json.loads(learner.to_str())["model"]
    pieces: list[str] = []
    for merge in learned["merges"]:
        piece = "".join(merge) if isinstance(merge, list) else merge.replace(" ", "")
        if piece not in pieces:
            pieces.append(piece)
    chars = sorted(t for t in learned["vocab"] if len(t) == 1)
    return pieces, chars


def _spm_vocab(specials: list[str], pieces: list[str], chars: list[str]):
    """A SentencePiece BPE vocabulary as transformers converts one: specials, the 256
    byte-fallback tokens, the learned pieces, the single characters; the merges are every
    split of every piece into two vocabulary pieces, ordered by the piece's id (its score)."""
    names = list(specials) + [f"<0x{b:02X}>" for b in range(256)] + pieces + [c for c in chars if c not in pieces]
    vocab = {t: i for i, t in enumerate(names)}
    merges = []
    for piece in pieces:
        splits = [(piece[:i], piece[i:]) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
        merges += sorted(splits, key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
    return vocab, merges


def build_spm_tokenizer(out_dir: Path, kind: str = "llama2"):
    """A SentencePiece-style tokenizer: ``llama2`` (Llama 2 / Mistral v0.1: dummy prefix, one
    added token), ``phi3`` (Llama 2's plus Phi-3's chat tokens) or ``gemma`` (no dummy prefix,
    Gemma's special tokens and turn markers)."""
    from transformers import GemmaTokenizer, LlamaTokenizer

    if kind == "gemma":
        pieces, chars = _learned_pieces("never")
        vocab, merges = _spm_vocab(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], pieces, chars)
        tok = GemmaTokenizer(vocab=vocab, merges=merges)
        tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
        tok.chat_template = GEMMA_TEMPLATE
    else:
        pieces, chars = _learned_pieces("always")
        vocab, merges = _spm_vocab(["<unk>", "<s>", "</s>"], pieces, chars)
        tok = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
        if kind == "phi3":
            tok.add_special_tokens({"additional_special_tokens": ["<|endoftext|>", "<|assistant|>", "<|end|>",
                                                                  "<|user|>", "<|system|>"]})
            tok.chat_template = PHI3_TEMPLATE
        else:
            tok.add_tokens(["<|user|>"])
            tok.chat_template = SPM_TEMPLATE
    tok.save_pretrained(out_dir)
    return tok


def build_unigram_tokenizer(out_dir: Path):
    """A SentencePiece Unigram tokenizer (T5-style: scored pieces, Metaspace), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
    tok.decoder = decoders.Metaspace(prepend_scheme="always")
    tok.train_from_iterator(_CORPUS * 4, trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = SPM_TEMPLATE.replace("{{ bos_token }}", "")
    fast.save_pretrained(out_dir)
    return fast


def build_family_model(out_dir: Path, family: str, seed: int = 0) -> Path:
    """A tiny random model of ``family`` (a key of FAMILIES) with its kind of tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, tok_kind, overrides = FAMILIES[family]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if tok_kind == "bpe":
        tok = build_tiny_tokenizer(out_dir)
    else:
        tok = build_spm_tokenizer(out_dir, tok_kind)
    options = {**SMALL, **overrides}
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id, **options)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(out_dir)
    return sharpen(out_dir)


def build_spm_model(out_dir: Path, unigram: bool = False) -> Path:
    """A tiny untied llama (Llama 2 layout) with a SentencePiece-style BPE tokenizer (or a
    Unigram one) and a few unused embedding rows, as padded vocabularies have."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = build_unigram_tokenizer(out_dir) if unigram else build_spm_tokenizer(out_dir)
    config = AutoConfig.for_model("llama", vocab_size=len(tok) + 3, tie_word_embeddings=False,
                                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **SMALL)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out_dir)
    return sharpen(out_dir)


def make_adapter(base: Path, adapter_dir: Path, seed: int = 1, **lora_kwargs) -> Path:
    """A LoRA adapter on every linear layer of ``base`` with random (non-zero) B matrices,
    saved with the base's tokenizer, as `twin train` saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)  # LoRA A is initialised from the global RNG
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    options = dict(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, LoraConfig(**{**options, **lora_kwargs}))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # LoRA starts as a no-op (B = 0): make it change the model
                param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    peft_model.save_pretrained(adapter_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter_dir)
    return adapter_dir


class TinyModels:
    """Tiny model directories built on first use: ``models["gemma2"]`` -> Path."""

    def __init__(self, root_factory):
        self._mktemp = root_factory
        self._built: dict[str, Path] = {}

    def __getitem__(self, family: str) -> Path:
        if family not in self._built:
            out = self._mktemp(f"tiny-{family}")
            if family in ("llama", "mistral", "qwen2"):  # the original three, from tests/tiny.py
                model_type, _, overrides = FAMILIES[family]
                build_tiny_model(out, arch=model_type, tie_word_embeddings=overrides["tie_word_embeddings"])
                sharpen(out)
            elif family in ("spm", "unigram"):
                build_spm_model(out, unigram=family == "unigram")
            else:
                build_family_model(out, family)
            self._built[family] = out
        return self._built[family]

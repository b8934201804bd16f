"""Tokenizer preparation shared by training and evaluation: chat template and padding token."""
from __future__ import annotations

from dataprocess.template import FALLBACK_CHAT_TEMPLATE


def prepare_tokenizer(tokenizer):
    """Give the tokenizer a chat template and a padding token that is not end-of-sequence.

    If padding were the EOS token, the collator would mask every EOS as padding and the model
    would never learn to stop; so an unused existing token (unk, ``<|endoftext|>``) is chosen,
    and only when none exists is a new ``<|pad|>`` token added (returns True then, so the
    caller resizes the embeddings).
    """
    if not tokenizer.chat_template:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return False
    vocab = tokenizer.get_vocab()
    for candidate in (tokenizer.unk_token, "<|endoftext|>", "<|finetune_right_pad_id|>", "<pad>", "[PAD]"):
        if candidate and candidate in vocab and vocab[candidate] != tokenizer.eos_token_id:
            tokenizer.pad_token = candidate
            return False
    tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return True

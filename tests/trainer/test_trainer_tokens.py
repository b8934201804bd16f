"""trainer.tokens: the padding token is never end-of-sequence; a chat template is always there."""
from trainer.tokens import prepare_tokenizer


def test_padding_token_is_not_eos(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = tokenizer.eos_token
    assert prepare_tokenizer(tokenizer) is False
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_tokenizer_without_chat_template_gets_the_fallback(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = None
    prepare_tokenizer(tokenizer)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in rendered

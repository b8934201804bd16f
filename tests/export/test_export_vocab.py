"""export.vocab: tokenizer metadata; llama.cpp must tokenize as the HF tokenizer does."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.export_models import copy_model, gguf_field, gguf_reader


def _with_pre_tokenizer(model: Path, dst: Path, kind: str) -> Path:
    from tokenizers import Regex, Tokenizer, pre_tokenizers

    from export.vocab import _LLAMA3_SPLIT, _QWEN2_SPLIT

    model = copy_model(model, dst)
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if kind == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        regex = {"qwen2": _QWEN2_SPLIT, "llama-bpe": _LLAMA3_SPLIT}[kind]
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated"), byte_level])
    tok.save(str(model / "tokenizer.json"))
    if kind == "llama-bpe":  # Llama 3's tokenizer takes whole-word vocabulary hits first
        data = json.loads((model / "tokenizer.json").read_text())
        data["model"]["ignore_merges"] = True
        (model / "tokenizer.json").write_text(json.dumps(data))
    return model


@pytest.mark.parametrize("kind", ["smollm", "qwen2", "llama-bpe"])
def test_pre_tokenizer_detected_and_llama_cpp_tokenizes_like_hf(tiny, tmp_path, kind):
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from voice.llama_runtime import open_llama

    model = _with_pre_tokenizer(tiny["llama"], tmp_path / "m", kind)
    out = write_gguf(model, tmp_path / "t.gguf", "F16")
    assert gguf_field(gguf_reader(out), "tokenizer.ggml.pre") == kind
    tok = AutoTokenizer.from_pretrained(model)
    llm = open_llama(out, vocab_only=True)
    try:
        for text in ["hello, how are you? omg hiii | im good", "bartaco at 7:30?? 12345 tacos",
                     "you're  right\n\n  2 of them", "want to get tacos tonight? bet | see u at 7"]:
            want = tok(text, add_special_tokens=False)["input_ids"]
            assert llm.tokenize(text.encode(), add_bos=False, special=True) == want, text
    finally:
        llm.close()


def test_detect_pre_tokenizer_structures():
    from export.vocab import _LLAMA3_SPLIT, _QWEN2_SPLIT, detect_pre_tokenizer

    bl = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    bl_noregex = dict(bl, use_regex=False)
    split = lambda rx: {"type": "Split", "pattern": {"Regex": rx}, "behavior": "Isolated"}  # noqa: E731
    seq = lambda *steps: {"pre_tokenizer": {"type": "Sequence", "pretokenizers": list(steps)}}  # noqa: E731

    assert detect_pre_tokenizer({"pre_tokenizer": bl})[0] == "gpt-2"
    assert detect_pre_tokenizer(seq({"type": "Digits", "individual_digits": True}, bl))[0] == "smollm"
    assert detect_pre_tokenizer(seq(split(_LLAMA3_SPLIT), bl_noregex))[0] == "llama-bpe"
    assert detect_pre_tokenizer(seq(split(_QWEN2_SPLIT), bl_noregex))[0] == "qwen2"
    assert detect_pre_tokenizer(seq(split(r"\s+"), bl_noregex))[0] == "gpt-2"  # unknown: fallback
    # SmolLM2 rebuilt from its GGUF: plain ByteLevel, but a vocabulary with single digits only
    vocab = {"a": 0, "1": 1, "2": 2, "Ġa": 3}
    assert detect_pre_tokenizer({"pre_tokenizer": bl}, False, vocab, set())[0] == "smollm"
    assert detect_pre_tokenizer({"pre_tokenizer": bl}, False, {**vocab, "12": 4}, set())[0] == "gpt-2"


def test_wordpiece_tokenizer_is_refused(tiny, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from export.errors import UnsupportedModelError
    from export.gguf_writer import write_gguf

    model = copy_model(tiny["llama"], tmp_path / "bertish")
    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]").save_pretrained(model)
    with pytest.raises(UnsupportedModelError, match="WordPiece"):
        write_gguf(model, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


# --------------------------------------------------------------------------- SentencePiece

SPM_PROBES = [
    "hello, how are you? omg hiii | im good",
    "bartaco at 7:30?? 12345 tacos",
    "Café déjà vu — naïve résumé Привет שלום",   # mostly byte fallback
    "want to get tacos tonight?\n\nbet | see u at 7",
    "you're  right ya fr lmaooo",
    "lowkey tired ngl | pickle says hi",
]


def test_sentencepiece_gguf_matches_transformers(tiny, tmp_path):
    import gguf
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from voice.llama_runtime import open_llama
    from export.verify import verify_gguf
    from helpers.export_models import SPM_TEMPLATE

    spm_model = tiny["spm"]
    out = write_gguf(spm_model, tmp_path / "spm.gguf", "F16")
    tok = AutoTokenizer.from_pretrained(spm_model)
    r = gguf_reader(out)
    assert gguf_field(r, "tokenizer.ggml.model") == "llama"
    assert gguf_field(r, "tokenizer.ggml.add_bos_token") is True
    assert gguf_field(r, "tokenizer.ggml.add_space_prefix") is True
    assert gguf_field(r, "tokenizer.ggml.bos_token_id") == tok.bos_token_id == 1
    assert gguf_field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id == 2
    assert gguf_field(r, "tokenizer.ggml.unknown_token_id") == tok.unk_token_id == 0
    assert gguf_field(r, "tokenizer.chat_template") == SPM_TEMPLATE
    assert "tokenizer.ggml.merges" not in r.fields
    tokens = gguf_field(r, "tokenizer.ggml.tokens")
    types = gguf_field(r, "tokenizer.ggml.token_type")
    scores = gguf_field(r, "tokenizer.ggml.scores")
    assert len(tokens) == len(types) == len(scores) == len(tok) + 3
    T = gguf.TokenType
    assert [types[i] for i in (0, 1, 2)] == [T.UNKNOWN, T.CONTROL, T.CONTROL]
    assert tokens[3] == "<0x00>" and tokens[3 + 0x41] == "<0x41>"
    assert {types[i] for i in range(3, 259)} == {T.BYTE}
    assert types[tok.convert_tokens_to_ids("<|user|>")] == T.USER_DEFINED
    assert types[tok.convert_tokens_to_ids("\u2581how")] == T.NORMAL
    assert [types[i] for i in range(len(tok), len(tok) + 3)] == [T.UNUSED] * 3
    # a piece scores below the pieces it is made of (its merge comes later)
    score = {t: s for t, s in zip(tokens, scores)}
    merges = json.loads((spm_model / "tokenizer.json").read_text())["model"]["merges"]
    for word in ("\u2581hello,", "\u2581lowkey", "\u2581tacos"):
        parts = next(m for m in merges if "".join(m) == word)
        assert all(score[p] > score[word] for p in parts if len(p) > 1), (word, parts)

    result = verify_gguf(out, spm_model)
    assert result.agreement == 1.0 and result.max_abs_diff < 5e-3
    assert result.tokenizer_match, result.tokenizer_mismatches
    llm = open_llama(out, vocab_only=True)
    try:
        for text in SPM_PROBES:
            assert llm.tokenize(text.encode(), add_bos=True, special=True) == tok(text)["input_ids"], text
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert llm.detokenize(ids).decode().lstrip(" ") == text
    finally:
        llm.close()


@pytest.mark.parametrize("family", ["gemma2", "phi3"])
def test_family_sentencepiece_tokenizers_tokenize_like_hf(tiny, tmp_path, family):
    """Gemma's (no dummy prefix, turn markers) and Phi-3's (Llama 2's plus chat tokens).

    Phi-3's chat prompt is left out: llama.cpp's SentencePiece tokenizer puts a dummy-prefix
    space after every special token, transformers' non-legacy Llama tokenizer only at the
    start of the text ("<|user|>\\n" differs). Token ids fed directly are unaffected."""
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from voice.llama_runtime import open_llama

    model = tiny[family]
    out = write_gguf(model, tmp_path / "t.gguf", "F16")
    r = gguf_reader(out)
    assert gguf_field(r, "tokenizer.ggml.model") == "llama"
    tok = AutoTokenizer.from_pretrained(model)
    assert gguf_field(r, "tokenizer.ggml.add_space_prefix") is (family == "phi3")
    eot = {"gemma2": "<end_of_turn>", "phi3": "<|end|>"}[family]
    assert gguf_field(r, "tokenizer.ggml.eot_token_id") == tok.convert_tokens_to_ids(eot)
    llm = open_llama(out, vocab_only=True)
    try:
        chat = tok.apply_chat_template([{"role": "user", "content": "hey u up?"}], tokenize=False,
                                       add_generation_prompt=True)
        for text in SPM_PROBES + ([chat] if family == "gemma2" else []):
            want = tok(text, add_special_tokens=False)["input_ids"]
            assert llm.tokenize(text.encode(), add_bos=False, special=True) == want, text
    finally:
        llm.close()


def test_sentencepiece_scores_decide_llama_cpp_tokenization(tiny, tmp_path, monkeypatch):
    """llama.cpp merges by score alone: with the scores in the wrong order it splits words
    unlike HF, so the probes above really test the scores derived from the merge ranks."""
    from transformers import AutoTokenizer

    import export.vocab as vocab
    from export.gguf_writer import write_gguf
    from voice.llama_runtime import open_llama

    ranked = vocab.spm_scores
    monkeypatch.setattr(vocab, "spm_scores", lambda v, m, n: [-x for x in ranked(v, m, n)])
    out = write_gguf(tiny["spm"], tmp_path / "flat.gguf", "F16")
    tok = AutoTokenizer.from_pretrained(tiny["spm"])
    llm = open_llama(out, vocab_only=True)
    try:
        differ = [t for t in SPM_PROBES
                  if llm.tokenize(t.encode(), add_bos=False, special=True)
                  != tok(t, add_special_tokens=False)["input_ids"]]
    finally:
        llm.close()
    assert differ


def test_unigram_tokenizer_exports_and_llama_cpp_tokenizes_like_hf(tiny, tmp_path):
    """A SentencePiece Unigram vocabulary goes to llama.cpp's Unigram tokenizer ("t5")."""
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from voice.llama_runtime import open_llama
    from export.verify import verify_gguf

    model = tiny["unigram"]
    out = write_gguf(model, tmp_path / "u.gguf", "F16")
    r = gguf_reader(out)
    assert gguf_field(r, "tokenizer.ggml.model") == "t5"
    tok = AutoTokenizer.from_pretrained(model)
    pieces = json.loads((model / "tokenizer.json").read_text())["model"]["vocab"]
    scores = gguf_field(r, "tokenizer.ggml.scores")
    assert scores[: len(pieces)] == pytest.approx([s for _, s in pieces])
    result = verify_gguf(out, model)
    assert result.agreement == 1.0
    llm = open_llama(out, vocab_only=True)
    try:
        for text in SPM_PROBES[:2] + SPM_PROBES[3:]:  # SPM_PROBES[2]: letters outside the vocabulary
            want = tok(text, add_special_tokens=False)["input_ids"]
            assert llm.tokenize(text.encode(), add_bos=False, special=True) == want, text
    finally:
        llm.close()

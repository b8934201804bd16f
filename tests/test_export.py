"""Tests for the export stage: merge, GGUF writing, llama.cpp quantization, parity, CLI.

Every model here is a tiny random one built by tests/tiny.py; llama.cpp (llama-cpp-python)
runs the written GGUFs and is compared with transformers on the same token ids.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

from tiny import build_tiny_model  # noqa: E402

ARCHS = {  # name -> build_tiny_model kwargs
    "llama": dict(arch="llama", tie_word_embeddings=True),
    "mistral": dict(arch="mistral", tie_word_embeddings=False),
    "qwen2": dict(arch="qwen2", tie_word_embeddings=True),
}


def _sharpen_attention(model_dir: Path, scale: float = 10.0) -> Path:
    """Scale q/k projections so attention (and so RoPE) really shapes the logits.

    A tiny random model attends almost uniformly: a GGUF with Q/K rows in the wrong RoPE
    order would still match it. Sharpened, the same mistake moves logits by ~0.7 while a
    correct F16 export stays within ~1e-3, so the parity tests below catch it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".q_proj." in name or ".k_proj." in name:
                param.mul_(scale)
    model.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny HF model directories, built once per module: tiny[name] -> Path."""
    built: dict[str, Path] = {}

    class _Models:
        def __getitem__(self, name: str) -> Path:
            if name not in built:
                path = build_tiny_model(tmp_path_factory.mktemp(f"tiny-{name}"), **ARCHS[name])
                built[name] = _sharpen_attention(path)
            return built[name]

    return _Models()


def _reader(path: Path):
    import gguf

    return gguf.GGUFReader(str(path))


def _field(reader, key: str):
    return reader.fields[key].contents()


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------- write + parity

@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("outtype", ["F32", "F16"])
def test_full_precision_gguf_matches_transformers(tiny, tmp_path, arch, outtype):
    from export.gguf_writer import write_gguf
    from export.verify import verify_gguf

    out = write_gguf(tiny[arch], tmp_path / f"{arch}.gguf", outtype)
    result = verify_gguf(out, tiny[arch])
    assert result.n_positions > 50
    assert result.tokenizer_match, result.tokenizer_mismatches
    if outtype == "F32":
        assert result.top1_agreement == 1.0
        assert result.max_abs_diff < 1e-3
    else:
        # F16 rounding may flip a position where the random model's top two logits tie;
        # such near-ties are excused, real disagreements are not.
        assert result.agreement == 1.0
        assert result.top1_agreement >= 0.97
        assert result.max_abs_diff < 5e-3


def test_parity_check_catches_unpermuted_q_k(tiny, tmp_path, monkeypatch):
    """Without llama's Q/K permutation the GGUF computes something else: parity sees it."""
    import export.gguf_writer as writer
    from export.verify import verify_gguf

    monkeypatch.setattr(writer, "_permute_for_llama_rope", lambda w, n_head: w)
    out = writer.write_gguf(tiny["llama"], tmp_path / "broken.gguf", "F32")
    assert verify_gguf(out, tiny["llama"]).max_abs_diff > 0.1


@pytest.mark.parametrize("outtype,min_agree,max_diff", [("Q8_0", 0.9, 0.05), ("BF16", 0.97, 0.02)])
def test_q8_0_and_bf16_written_directly(tiny, tmp_path, outtype, min_agree, max_diff):
    import gguf

    from export.gguf_writer import write_gguf
    from export.verify import verify_gguf

    f16 = write_gguf(tiny["mistral"], tmp_path / "f16.gguf", "F16")
    out = write_gguf(tiny["mistral"], tmp_path / f"{outtype}.gguf", outtype)
    if outtype == "Q8_0":
        assert out.stat().st_size < f16.stat().st_size
    types = {t.name: t.tensor_type for t in _reader(out).tensors}
    want = getattr(gguf.GGMLQuantizationType, outtype)
    assert types["blk.0.attn_q.weight"] == want
    assert types["output.weight"] == want
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32  # 1-D stays F32
    assert types["output_norm.weight"] == gguf.GGMLQuantizationType.F32
    result = verify_gguf(out, tiny["mistral"])
    assert result.agreement >= min_agree
    assert result.max_abs_diff < max_diff


def test_llama3_rope_scaling_parity(tiny, tmp_path):
    """Llama 3.1-style RoPE scaling is written as llama.cpp's rope_freqs tensor."""
    from export.gguf_writer import write_gguf
    from export.verify import verify_gguf

    model = _copy_model(tiny["llama"], tmp_path / "llama3rope")
    cfg = json.loads((model / "config.json").read_text())
    cfg["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 16}
    (model / "config.json").write_text(json.dumps(cfg))
    out = write_gguf(model, tmp_path / "rope.gguf", "F32")
    assert "rope_freqs.weight" in {t.name for t in _reader(out).tensors}
    result = verify_gguf(out, model)
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 1e-3


def test_gguf_metadata(tiny, tmp_path):
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf

    model = tiny["llama"]
    tok = AutoTokenizer.from_pretrained(model)
    cfg = json.loads((model / "config.json").read_text())
    r = _reader(write_gguf(model, tmp_path / "m.gguf", "F16"))

    assert _field(r, "general.architecture") == "llama"
    assert _field(r, "general.file_type") == 1  # MOSTLY_F16
    assert _field(r, "llama.block_count") == cfg["num_hidden_layers"]
    assert _field(r, "llama.embedding_length") == cfg["hidden_size"]
    assert _field(r, "llama.feed_forward_length") == cfg["intermediate_size"]
    assert _field(r, "llama.attention.head_count") == cfg["num_attention_heads"]
    assert _field(r, "llama.attention.head_count_kv") == cfg["num_key_value_heads"]
    assert _field(r, "llama.rope.dimension_count") == cfg["hidden_size"] // cfg["num_attention_heads"]
    assert _field(r, "llama.context_length") == cfg["max_position_embeddings"]
    assert _field(r, "llama.rope.freq_base") == pytest.approx(10000.0)
    assert _field(r, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(cfg["rms_norm_eps"])

    assert _field(r, "tokenizer.ggml.model") == "gpt2"
    assert _field(r, "tokenizer.ggml.pre") == "gpt-2"
    tokens = _field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == cfg["vocab_size"] == len(tok)
    assert tokens[tok.convert_tokens_to_ids("<|im_end|>")] == "<|im_end|>"
    types = _field(r, "tokenizer.ggml.token_type")
    assert types[tok.convert_tokens_to_ids("<|im_start|>")] == 3  # CONTROL
    merges = json.loads((model / "tokenizer.json").read_text())["model"]["merges"]
    assert len(_field(r, "tokenizer.ggml.merges")) == len(merges) > 0
    assert _field(r, "tokenizer.chat_template") == tok.chat_template
    assert _field(r, "tokenizer.ggml.bos_token_id") == tok.bos_token_id
    assert _field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    assert _field(r, "tokenizer.ggml.padding_token_id") == tok.pad_token_id
    assert _field(r, "tokenizer.ggml.eot_token_id") == tok.convert_tokens_to_ids("<|im_end|>")
    assert _field(r, "tokenizer.ggml.add_bos_token") is False

    names = {t.name for t in r.tensors}
    assert "token_embd.weight" in names and "output.weight" not in names  # tied embeddings
    assert {"blk.1.attn_q.weight", "blk.1.ffn_gate.weight", "output_norm.weight"} <= names


def test_untied_and_qwen2_tensors(tiny, tmp_path):
    from export.gguf_writer import write_gguf

    mistral = {t.name for t in _reader(write_gguf(tiny["mistral"], tmp_path / "m.gguf")).tensors}
    assert "output.weight" in mistral
    r = _reader(write_gguf(tiny["qwen2"], tmp_path / "q.gguf"))
    assert _field(r, "general.architecture") == "qwen2"
    # transformers builds Qwen2's tokenizer with Qwen2's split regex whatever tokenizer.json says
    assert _field(r, "tokenizer.ggml.pre") == "qwen2"
    qwen = {t.name for t in r.tensors}
    assert {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"} <= qwen


def test_transformers_reads_the_gguf_back(tiny, tmp_path):
    """transformers' own GGUF loader (which undoes llama's Q/K permutation) gets the same model."""
    import torch
    from transformers import AutoModelForCausalLM

    from export.gguf_writer import write_gguf

    model = tiny["llama"]
    out = write_gguf(model, tmp_path / "rt.gguf", "F32")
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name, dtype=torch.float32)
    orig = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    with torch.no_grad():
        assert torch.allclose(back(ids).logits, orig(ids).logits, atol=1e-4)


# --------------------------------------------------------------------------- tokenizer

def _with_pre_tokenizer(model: Path, dst: Path, kind: str) -> Path:
    from tokenizers import Regex, Tokenizer, pre_tokenizers

    from export.vocab import _LLAMA3_SPLIT, _QWEN2_SPLIT

    model = _copy_model(model, dst)
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
    from export.llama_runtime import open_llama

    model = _with_pre_tokenizer(tiny["llama"], tmp_path / "m", kind)
    out = write_gguf(model, tmp_path / "t.gguf", "F16")
    assert _field(_reader(out), "tokenizer.ggml.pre") == kind
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


def test_unigram_tokenizer_is_refused(tiny, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from export.errors import UnsupportedModelError
    from export.gguf_writer import write_gguf

    model = _copy_model(tiny["llama"], tmp_path / "t5ish")
    unigram = Tokenizer(models.Unigram([("<unk>", 0.0), ("\u2581a", -1.0), ("a", -2.0)], unk_id=0))
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    PreTrainedTokenizerFast(tokenizer_object=unigram, unk_token="<unk>").save_pretrained(model)
    with pytest.raises(UnsupportedModelError, match="Unigram"):
        write_gguf(model, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


# --------------------------------------------------------------------------- SentencePiece

SPM_TEMPLATE = (  # Mistral-instruct style
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}"
    "{% endfor %}")


def build_spm_tokenizer(out_dir: Path, n_pieces: int = 320):
    """A Llama-2 / Mistral-v0.1 style tokenizer, laid out the way transformers converts a
    SentencePiece BPE model: <unk> <s> </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, the
    learned pieces ("\u2581" for spaces), the single characters; the merges are every split of
    every piece into two vocabulary pieces, ordered by the piece's id (its SentencePiece
    score). Plus one added non-special token, as a fine-tune may add."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    from tiny import _CORPUS

    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
    learner.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(vocab_size=n_pieces, show_progress=False))
    learned = json.loads(learner.to_str())["model"]
    pieces: list[str] = []
    for merge in learned["merges"]:
        piece = "".join(merge) if isinstance(merge, list) else merge.replace(" ", "")
        if piece not in pieces:
            pieces.append(piece)
    chars = sorted(t for t in learned["vocab"] if len(t) == 1)
    names = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces + chars
    vocab = {t: i for i, t in enumerate(names)}
    merges = []
    for piece in pieces:
        splits = [(piece[:i], piece[i:]) for i in range(1, len(piece))
                  if piece[:i] in vocab and piece[i:] in vocab]
        merges += sorted(splits, key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
    tok = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    tok.add_tokens(["<|user|>"])
    tok.chat_template = SPM_TEMPLATE
    tok.save_pretrained(out_dir)
    return tok


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Path:
    """A tiny untied llama (Llama 2 layout) with the SentencePiece-style tokenizer above."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = tmp_path_factory.mktemp("tiny-spm")
    tok = build_spm_tokenizer(out)
    config = AutoConfig.for_model(
        "llama", vocab_size=len(tok) + 3,  # a few unused embedding rows, as padded vocabularies have
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return _sharpen_attention(out)


SPM_PROBES = [
    "hello, how are you? omg hiii | im good",
    "bartaco at 7:30?? 12345 tacos",
    "Café déjà vu — naïve résumé Привет שלום",   # mostly byte fallback
    "want to get tacos tonight?\n\nbet | see u at 7",
    "you're  right ya fr lmaooo",
    "lowkey tired ngl | pickle says hi",
]


def test_sentencepiece_gguf_matches_transformers(spm_model, tmp_path):
    import gguf
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from export.llama_runtime import open_llama
    from export.verify import verify_gguf

    out = write_gguf(spm_model, tmp_path / "spm.gguf", "F16")
    tok = AutoTokenizer.from_pretrained(spm_model)
    r = _reader(out)
    assert _field(r, "tokenizer.ggml.model") == "llama"
    assert _field(r, "tokenizer.ggml.add_bos_token") is True
    assert _field(r, "tokenizer.ggml.add_space_prefix") is True
    assert _field(r, "tokenizer.ggml.bos_token_id") == tok.bos_token_id == 1
    assert _field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id == 2
    assert _field(r, "tokenizer.ggml.unknown_token_id") == tok.unk_token_id == 0
    assert _field(r, "tokenizer.chat_template") == SPM_TEMPLATE
    assert "tokenizer.ggml.merges" not in r.fields
    tokens = _field(r, "tokenizer.ggml.tokens")
    types = _field(r, "tokenizer.ggml.token_type")
    scores = _field(r, "tokenizer.ggml.scores")
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


def test_sentencepiece_scores_decide_llama_cpp_tokenization(spm_model, tmp_path, monkeypatch):
    """llama.cpp merges by score alone: with the scores in the wrong order it splits words
    unlike HF, so the probes above really test the scores derived from the merge ranks."""
    import export.vocab as vocab
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from export.llama_runtime import open_llama

    ranked = vocab.spm_scores
    monkeypatch.setattr(vocab, "spm_scores", lambda v, m, n: [-x for x in ranked(v, m, n)])
    out = write_gguf(spm_model, tmp_path / "flat.gguf", "F16")
    tok = AutoTokenizer.from_pretrained(spm_model)
    llm = open_llama(out, vocab_only=True)
    try:
        differ = [t for t in SPM_PROBES
                  if llm.tokenize(t.encode(), add_bos=False, special=True)
                  != tok(t, add_special_tokens=False)["input_ids"]]
    finally:
        llm.close()
    assert differ


# --------------------------------------------------------------------------- quantize

def test_k_quant_through_llama_cpp(tmp_path):
    import gguf

    from export.gguf_writer import write_gguf
    from export.quantize import quantize_gguf
    from export.verify import verify_gguf

    # K-quants work on rows of 256: use hidden 256 so most tensors really become Q4_K/Q6_K.
    model = build_tiny_model(tmp_path / "m256", hidden_size=256, layers=2, heads=4, kv_heads=2)
    f16 = write_gguf(model, tmp_path / "f16.gguf", "F16")
    out = quantize_gguf(f16, tmp_path / "q4km.gguf", "q4_k_m")
    types = {t.tensor_type for t in _reader(out).tensors}
    assert gguf.GGMLQuantizationType.Q4_K in types
    assert out.stat().st_size < f16.stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    result = verify_gguf(out, model)
    assert result.agreement >= 0.6


def test_k_quant_falls_back_for_small_rows(tiny, tmp_path):
    """Rows of 64 are not a multiple of 256: llama.cpp picks compatible types instead."""
    import gguf

    from export.gguf_writer import write_gguf
    from export.quantize import quantize_gguf

    f16 = write_gguf(tiny["llama"], tmp_path / "f16.gguf", "F16")
    out = quantize_gguf(f16, tmp_path / "q.gguf", "Q4_K_M")
    types = {t.tensor_type for t in _reader(out).tensors}
    assert gguf.GGMLQuantizationType.Q4_K not in types
    assert types & {gguf.GGMLQuantizationType.Q5_0, gguf.GGMLQuantizationType.Q8_0,
                    gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q5_1}


def test_unknown_quant_names_valid_ones(tiny, tmp_path):
    from export.quantize import quantize_gguf

    with pytest.raises(ValueError, match="Q4_K_M"):
        quantize_gguf(tmp_path / "in.gguf", tmp_path / "out.gguf", "Q9_Z")


# --------------------------------------------------------------------------- atomicity

def test_failed_write_leaves_no_file(tiny, tmp_path, monkeypatch):
    import gguf

    from export.gguf_writer import write_gguf

    target = tmp_path / "twin.gguf"

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", boom)
    with pytest.raises(OSError, match="disk full"):
        write_gguf(tiny["llama"], target, "F16")
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"previous export")  # an existing file survives a failed rewrite
    with pytest.raises(OSError):
        write_gguf(tiny["llama"], target, "F16")
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["twin.gguf"]


def test_unsupported_architecture_writes_nothing(tiny, tmp_path):
    from export.errors import UnsupportedModelError
    from export.gguf_writer import write_gguf

    model = _copy_model(tiny["llama"], tmp_path / "gpt2ish")
    cfg = json.loads((model / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedModelError, match="gpt2"):
        write_gguf(model, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_failed_quantize_leaves_no_file(tmp_path):
    from export.errors import ExportError
    from export.quantize import quantize_gguf

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF but not really")
    with pytest.raises(ExportError, match="could not quantize"):
        quantize_gguf(bad, tmp_path / "out.gguf", "Q4_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


# --------------------------------------------------------------------------- merge

def _make_adapter(base: Path, adapter_dir: Path, seed: int = 1, **lora_kwargs) -> Path:
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


def test_merge_adapter_equals_peft_model(tiny, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from export.merge import merge_adapter

    base = tiny["llama"]
    adapter = _make_adapter(base, tmp_path / "adapter")
    out = tmp_path / "merged"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier export")  # replaced as a whole
    assert merge_adapter(adapter, out) == out
    assert not (out / "stale.txt").exists()
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "merged"]

    ids = torch.tensor([[1, 50, 60, 70, 80, 90]])
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    plain = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with torch.no_grad():
        got, want, before = merged(ids).logits, peft_model(ids).logits, plain(ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert (got - before).abs().max() > 0.05  # the adapter really changed the model


def test_merge_without_adapter_config(tmp_path):
    from export.errors import ExportError
    from export.merge import merge_adapter

    (tmp_path / "adapter").mkdir()
    with pytest.raises(ExportError, match="adapter_config.json"):
        merge_adapter(tmp_path / "adapter", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- Modelfile

def test_modelfile_chatml_with_default_system(tiny):
    from transformers import AutoTokenizer

    from export.modelfile import chat_format, render_modelfile

    tok = AutoTokenizer.from_pretrained(tiny["llama"])
    tok.chat_template = (  # SmolLM2's: injects a default system prompt
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    fmt = chat_format(tok)
    assert fmt.name == "chatml" and fmt.default_system == "You are a helpful AI assistant named SmolLM"
    text = render_modelfile("twin-Q8_0.gguf", fmt, "DONE")
    assert "FROM ./twin-Q8_0.gguf" in text
    assert "<|im_start|>{{ .Role }}" in text
    assert 'PARAMETER stop "DONE"' in text and 'PARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM"""' in text


# --------------------------------------------------------------------------- CLI

def _run_cli(*args: str):
    from click.testing import CliRunner

    from export.cli import export_command

    return CliRunner().invoke(export_command, list(args))


def _error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_cli_missing_adapter(tmp_path):
    (tmp_path / "ws").mkdir()
    result = _run_cli("--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 1
    assert "no trained adapter" in _error_line(result)
    assert result.output.count("\n") == 1  # exactly one line
    assert not (tmp_path / "ws" / "model").exists()


def test_cli_missing_workspace(tmp_path):
    result = _run_cli("--workspace", str(tmp_path / "nope"))
    assert "does not exist" in _error_line(result)


def test_cli_bad_quant(tmp_path):
    result = _run_cli("--workspace", str(tmp_path), "--quant", "Q9_Z")
    assert result.exit_code == 2
    line = _error_line(result)
    assert "--quant" in line and "Q4_K_M" in line


def test_cli_unsupported_architecture_fails_before_merging(tiny, tmp_path):
    base = _copy_model(tiny["llama"], tmp_path / "base")
    cfg = json.loads((base / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (base / "config.json").write_text(json.dumps(cfg))
    adapter = tmp_path / "ws" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    result = _run_cli("--workspace", str(tmp_path / "ws"))
    assert "unsupported architecture 'gpt2'" in _error_line(result)
    assert not (tmp_path / "ws" / "model").exists()


def test_cli_exports_a_workspace(tiny, tmp_path):
    ws = tmp_path / "ws"
    _make_adapter(tiny["llama"], ws / "adapter")
    result = _run_cli("--workspace", str(ws), "--quant", "f16", "--also-lora")
    assert result.exit_code == 0, result.output
    model = ws / "model"
    assert (model / "hf" / "model.safetensors").is_file()
    assert (model / "twin-F16.gguf").is_file()
    assert "top-1 agreement" in result.output  # F16 must agree everywhere (near-ties excused)
    assert "F16 base + LoRA: top-1 agreement" in result.output and "--lora" in result.output
    modelfile = (model / "Modelfile").read_text()
    assert "FROM ./twin-F16.gguf" in modelfile and 'PARAMETER stop "DONE"' in modelfile
    assert 'SYSTEM """you are me. ' in modelfile  # the persona line the twin was trained with
    assert sorted(p.name for p in model.iterdir()) == ["Modelfile", "hf", "twin-F16.gguf",
                                                       "twin-lora-F16.gguf"]
    # the model, not the adapter, is the newest twin-*.gguf (what `twin serve -w` picks)
    assert (model / "twin-F16.gguf").stat().st_mtime >= (model / "twin-lora-F16.gguf").stat().st_mtime

    # the exported GGUF chats with the tokenizer's template through llama-cpp-python
    from export.llama_runtime import open_llama

    llm = open_llama(model / "twin-F16.gguf", n_ctx=128, n_threads=2)
    try:
        reply = llm.create_chat_completion(messages=[{"role": "user", "content": "hey"}],
                                           max_tokens=4, temperature=0.0)
        assert reply["choices"][0]["message"]["role"] == "assistant"
    finally:
        llm.close()


def test_cli_verification_failure_keeps_nothing(tiny, tmp_path, monkeypatch):
    import export.verify as verify

    ws = tmp_path / "ws"
    _make_adapter(tiny["llama"], ws / "adapter")
    monkeypatch.setattr(verify, "min_agreement", lambda quant: 1.01)  # impossible to reach
    result = _run_cli("--workspace", str(ws), "--quant", "Q8_0")
    assert "verification failed" in _error_line(result)
    assert sorted(p.name for p in (ws / "model").iterdir()) == ["hf"]  # merged model only


# --------------------------------------------------------------------------- LoRA GGUF

def _gguf_logits(gguf_path: Path, ids: list[int], lora: Path | None = None):
    import numpy as np

    from export.llama_runtime import open_llama

    extra = {"lora_path": str(lora)} if lora is not None else {}
    llm = open_llama(gguf_path, logits_all=True, n_ctx=64, n_batch=64, n_threads=2, **extra)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


@pytest.mark.parametrize("arch,lora_kwargs", [
    ("llama", {}),
    ("qwen2", {}),
    # rsLoRA and per-module ranks/alphas: one GGUF alpha cannot express them, scales are folded
    ("mistral", dict(use_rslora=True, rank_pattern={"v_proj": 2}, alpha_pattern={"o_proj": 3})),
])
def test_lora_gguf_on_base_matches_merged_model(tiny, tmp_path, arch, lora_kwargs):
    """llama.cpp with base F16 GGUF + LoRA GGUF computes what the merged model computes."""
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from export.lora_gguf import write_lora_gguf
    from export.merge import merge_adapter
    from export.verify import verify_gguf

    base = tiny[arch]
    adapter = _make_adapter(base, tmp_path / "adapter", **lora_kwargs)
    merged = merge_adapter(adapter, tmp_path / "merged")
    base_gguf = write_gguf(base, tmp_path / "base.gguf", "F16")
    lora = write_lora_gguf(adapter, base, tmp_path / "lora.gguf", "F16")

    r = _reader(lora)
    assert _field(r, "general.type") == "adapter"
    assert _field(r, "adapter.type") == "lora"
    assert _field(r, "general.architecture") == _field(_reader(base_gguf), "general.architecture")
    assert _field(r, "adapter.lora.alpha") == (0.0 if lora_kwargs else 8.0)
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in r.tensors}  # GGUF order: (in, out)
    assert shapes["blk.0.attn_q.weight.lora_a"] == (64, 4)    # A: rank x in
    assert shapes["blk.1.ffn_down.weight.lora_b"] == (4, 64)  # B: out x rank
    assert len(shapes) == 2 * 7 * 2  # 7 linear layers per block, 2 blocks, A and B

    # against the merged HF model (transformers), on the verify prompts
    result = verify_gguf(base_gguf, merged, lora_path=lora, check_tokenizer=False)
    assert result.agreement == 1.0 and result.max_abs_diff < 2e-2
    # against the merged model's own GGUF (llama.cpp both sides)
    ids = AutoTokenizer.from_pretrained(merged)("hello, how are you? omg hiii | im good")["input_ids"]
    with_lora = _gguf_logits(base_gguf, ids, lora=lora)
    merged_gguf = _gguf_logits(write_gguf(merged, tmp_path / "merged.gguf", "F16"), ids)
    assert (with_lora.argmax(-1) == merged_gguf.argmax(-1)).mean() >= 0.95
    assert abs(with_lora - merged_gguf).max() < 2e-2
    assert abs(_gguf_logits(base_gguf, ids) - merged_gguf).max() > 0.1  # the adapter matters


def test_lora_gguf_needs_the_q_k_permutation(tiny, tmp_path, monkeypatch):
    import export.lora_gguf as lora_gguf
    from export.gguf_writer import write_gguf
    from export.merge import merge_adapter
    from export.verify import verify_gguf

    base = tiny["llama"]
    adapter = _make_adapter(base, tmp_path / "adapter")
    merged = merge_adapter(adapter, tmp_path / "merged")
    base_gguf = write_gguf(base, tmp_path / "base.gguf", "F16")
    monkeypatch.setattr(lora_gguf, "_permute_for_llama_rope", lambda w, n_head: w)
    lora = lora_gguf.write_lora_gguf(adapter, base, tmp_path / "lora.gguf")
    assert verify_gguf(base_gguf, merged, lora_path=lora, check_tokenizer=False).max_abs_diff > 0.1


def test_lora_gguf_refuses_what_llama_cpp_cannot_apply(tiny, tmp_path):
    from export.errors import UnsupportedModelError
    from export.lora_gguf import write_lora_gguf

    adapter = _make_adapter(tiny["llama"], tmp_path / "adapter", modules_to_save=["lm_head"])
    with pytest.raises(UnsupportedModelError, match="merged model"):
        write_lora_gguf(adapter, tiny["llama"], tmp_path / "lora.gguf")
    assert not (tmp_path / "lora.gguf").exists()


def test_cli_lora_only(tiny, tmp_path):
    ws = tmp_path / "ws"
    _make_adapter(tiny["qwen2"], ws / "adapter")
    result = _run_cli("--workspace", str(ws), "--lora-only")
    assert result.exit_code == 0, result.output
    assert "F16 base + LoRA: top-1 agreement 100.0%" in result.output
    assert sorted(p.name for p in (ws / "model").iterdir()) == ["twin-lora-F16.gguf"]  # no merge


def test_cli_lora_only_and_also_lora_exclude_each_other(tmp_path):
    result = _run_cli("--workspace", str(tmp_path), "--lora-only", "--also-lora")
    assert result.exit_code == 2 and "exclude each other" in result.output
    assert not (tmp_path / "model").exists()

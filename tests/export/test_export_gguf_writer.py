"""export.gguf_writer: GGUFs of tiny models, run by llama.cpp, against transformers."""
from __future__ import annotations

import json

import pytest

from helpers.export_models import copy_model, edit_config, gguf_field, gguf_reader

BASIC = ["llama", "mistral", "qwen2"]


@pytest.mark.parametrize("arch", BASIC)
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
    import export.arch as arch
    from export.gguf_writer import write_gguf
    from export.verify import verify_gguf

    monkeypatch.setattr(arch, "permute_for_llama_rope", lambda w, n_head: w)
    out = write_gguf(tiny["llama"], tmp_path / "broken.gguf", "F32")
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
    types = {t.name: t.tensor_type for t in gguf_reader(out).tensors}
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

    model = edit_config(copy_model(tiny["llama"], tmp_path / "llama3rope"), rope_parameters={
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
    out = write_gguf(model, tmp_path / "rope.gguf", "F32")
    assert "rope_freqs.weight" in {t.name for t in gguf_reader(out).tensors}
    result = verify_gguf(out, model)
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 1e-3


def test_gguf_metadata(tiny, tmp_path):
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf

    model = tiny["llama"]
    tok = AutoTokenizer.from_pretrained(model)
    cfg = json.loads((model / "config.json").read_text())
    r = gguf_reader(write_gguf(model, tmp_path / "m.gguf", "F16", name="twin-maya",
                               metadata={"twin.persona": "maya", "twin.sampling": '{"temperature": 0.5}'}))

    assert gguf_field(r, "general.architecture") == "llama"
    assert gguf_field(r, "general.name") == "twin-maya"
    assert gguf_field(r, "twin.persona") == "maya"
    assert json.loads(gguf_field(r, "twin.sampling")) == {"temperature": 0.5}
    assert gguf_field(r, "general.file_type") == 1  # MOSTLY_F16
    assert gguf_field(r, "llama.block_count") == cfg["num_hidden_layers"]
    assert gguf_field(r, "llama.embedding_length") == cfg["hidden_size"]
    assert gguf_field(r, "llama.feed_forward_length") == cfg["intermediate_size"]
    assert gguf_field(r, "llama.attention.head_count") == cfg["num_attention_heads"]
    assert gguf_field(r, "llama.attention.head_count_kv") == cfg["num_key_value_heads"]
    assert gguf_field(r, "llama.rope.dimension_count") == cfg["hidden_size"] // cfg["num_attention_heads"]
    assert gguf_field(r, "llama.context_length") == cfg["max_position_embeddings"]
    assert gguf_field(r, "llama.rope.freq_base") == pytest.approx(10000.0)
    assert gguf_field(r, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(cfg["rms_norm_eps"])

    assert gguf_field(r, "tokenizer.ggml.model") == "gpt2"
    assert gguf_field(r, "tokenizer.ggml.pre") == "gpt-2"
    tokens = gguf_field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == cfg["vocab_size"] == len(tok)
    assert tokens[tok.convert_tokens_to_ids("<|im_end|>")] == "<|im_end|>"
    types = gguf_field(r, "tokenizer.ggml.token_type")
    assert types[tok.convert_tokens_to_ids("<|im_start|>")] == 3  # CONTROL
    merges = json.loads((model / "tokenizer.json").read_text())["model"]["merges"]
    assert len(gguf_field(r, "tokenizer.ggml.merges")) == len(merges) > 0
    assert gguf_field(r, "tokenizer.chat_template") == tok.chat_template
    assert gguf_field(r, "tokenizer.ggml.bos_token_id") == tok.bos_token_id
    assert gguf_field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    assert gguf_field(r, "tokenizer.ggml.padding_token_id") == tok.pad_token_id
    assert gguf_field(r, "tokenizer.ggml.eot_token_id") == tok.convert_tokens_to_ids("<|im_end|>")
    assert gguf_field(r, "tokenizer.ggml.add_bos_token") is False

    names = {t.name for t in r.tensors}
    assert "token_embd.weight" in names and "output.weight" not in names  # tied embeddings
    assert {"blk.1.attn_q.weight", "blk.1.ffn_gate.weight", "output_norm.weight"} <= names


def test_untied_and_qwen2_tensors(tiny, tmp_path):
    from export.gguf_writer import write_gguf

    mistral = {t.name for t in gguf_reader(write_gguf(tiny["mistral"], tmp_path / "m.gguf")).tensors}
    assert "output.weight" in mistral
    r = gguf_reader(write_gguf(tiny["qwen2"], tmp_path / "q.gguf"))
    assert gguf_field(r, "general.architecture") == "qwen2"
    # transformers builds Qwen2's tokenizer with Qwen2's split regex whatever tokenizer.json says
    assert gguf_field(r, "tokenizer.ggml.pre") == "qwen2"
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


def test_tensors_are_read_one_at_a_time(tiny, tmp_path, monkeypatch):
    """The writer never holds two checkpoint tensors at once: each is written before the next is read."""
    import export.weights as weights
    from export.gguf_writer import write_gguf

    alive: list[int] = []
    peak = []
    original = weights.CheckpointWeights.load

    def counting_load(self, name, rows=None):
        import weakref

        tensor = original(self, name, rows)
        alive.append(1)
        weakref.finalize(tensor, alive.pop)
        peak.append(len(alive))
        return tensor

    monkeypatch.setattr(weights.CheckpointWeights, "load", counting_load)
    write_gguf(tiny["mistral"], tmp_path / "m.gguf", "Q8_0")
    assert len(peak) > 10 and max(peak) == 1


def test_failed_write_leaves_no_file(tiny, tmp_path, monkeypatch):
    import gguf

    from export.gguf_writer import write_gguf

    target = tmp_path / "twin.gguf"

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", boom)
    with pytest.raises(OSError, match="disk full"):
        write_gguf(tiny["llama"], target, "F16")
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"previous export")  # an existing file survives a failed rewrite
    with pytest.raises(OSError):
        write_gguf(tiny["llama"], target, "F16")
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["twin.gguf"]


def test_unsupported_architecture_lists_the_supported_ones(tiny, tmp_path):
    from core.errors import InputError
    from export.errors import UnsupportedModelError
    from export.gguf_writer import write_gguf

    model = edit_config(copy_model(tiny["llama"], tmp_path / "gpt2ish"), model_type="gpt2")
    with pytest.raises(UnsupportedModelError, match="gpt2") as caught:
        write_gguf(model, tmp_path / "x.gguf")
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 2
    for family in ("Llama", "Mistral", "Qwen2", "Qwen3", "Phi-3", "Gemma 2", "Gemma 3"):
        assert family in str(caught.value)
    assert not (tmp_path / "x.gguf").exists()


@pytest.mark.parametrize("outtype", ["Q8_0", "F16"])
def test_big_tensors_by_slices_give_the_same_file(tiny, tmp_path, monkeypatch, outtype):
    """Slices of rows (what a vocabulary-sized embedding goes by) write the very same bytes."""
    import export.gguf_writer as writer
    from export.weights import ModelSource
    from helpers.export_models import make_adapter

    source = ModelSource(tiny["mistral"], make_adapter(tiny["mistral"], tmp_path / "adapter"))
    whole = writer.write_gguf(source, tmp_path / "whole.gguf", outtype)
    monkeypatch.setattr(writer, "SLICE_BYTES", 4 * 64 * 7)  # 7 rows at a time: uneven last slice
    sliced = writer.write_gguf(source, tmp_path / "sliced.gguf", outtype)
    assert sliced.read_bytes() == whole.read_bytes()


def test_an_output_layer_stored_despite_a_tied_config_is_written(tiny, tmp_path):
    """transformers unties what the checkpoint stores twice with different values: so does the GGUF."""
    import torch
    from safetensors.torch import load_file, save_file

    from export.gguf_writer import write_gguf
    from export.verify import verify_gguf

    model = copy_model(tiny["llama"], tmp_path / "m")
    state = load_file(str(model / "model.safetensors"))
    assert "lm_head.weight" not in state
    state["lm_head.weight"] = torch.randn(state["model.embed_tokens.weight"].shape) * 0.02
    save_file(state, str(model / "model.safetensors"), metadata={"format": "pt"})
    out = write_gguf(model, tmp_path / "m.gguf", "F32")
    assert "output.weight" in {t.name for t in gguf_reader(out).tensors}
    result = verify_gguf(out, model)
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 1e-3

"""export.lora_gguf: the adapter alone, applied by llama.cpp on an F16 GGUF of the base."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers.export_models import gguf_field, gguf_reader, make_adapter


def _gguf_logits(gguf_path: Path, ids: list[int], lora: Path | None = None):
    from export.verify import gguf_logits

    return gguf_logits(gguf_path, [ids], lora_path=lora, n_threads=2)[0][0]


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
    adapter = make_adapter(base, tmp_path / "adapter", **lora_kwargs)
    merged = merge_adapter(adapter, tmp_path / "merged")
    base_gguf = write_gguf(base, tmp_path / "base.gguf", "F16")
    lora = write_lora_gguf(adapter, base, tmp_path / "lora.gguf", "F16")

    r = gguf_reader(lora)
    assert gguf_field(r, "general.type") == "adapter"
    assert gguf_field(r, "adapter.type") == "lora"
    assert gguf_field(r, "general.architecture") == gguf_field(gguf_reader(base_gguf), "general.architecture")
    assert gguf_field(r, "adapter.lora.alpha") == (0.0 if lora_kwargs else 8.0)
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
    import export.arch as arch
    from export.gguf_writer import write_gguf
    from export.lora_gguf import write_lora_gguf
    from export.merge import merge_adapter
    from export.verify import verify_gguf

    base = tiny["llama"]
    adapter = make_adapter(base, tmp_path / "adapter")
    merged = merge_adapter(adapter, tmp_path / "merged")
    base_gguf = write_gguf(base, tmp_path / "base.gguf", "F16")
    monkeypatch.setattr(arch, "permute_for_llama_rope", lambda w, n_head: w)
    lora = write_lora_gguf(adapter, base, tmp_path / "lora.gguf")
    assert verify_gguf(base_gguf, merged, lora_path=lora, check_tokenizer=False).max_abs_diff > 0.1


def test_lora_gguf_refuses_what_llama_cpp_cannot_apply(tiny, tmp_path):
    from export.errors import UnsupportedModelError
    from export.lora_gguf import write_lora_gguf

    adapter = make_adapter(tiny["llama"], tmp_path / "adapter", modules_to_save=["lm_head"])
    with pytest.raises(UnsupportedModelError, match="merged model"):
        write_lora_gguf(adapter, tiny["llama"], tmp_path / "lora.gguf")
    assert not (tmp_path / "lora.gguf").exists()

"""The seeds' families: a tiny random model of each, with a LoRA, exported and run by llama.cpp.

Each is compared with transformers (the base + the PEFT adapter) on the check's prompts: the
merged GGUF, and the LoRA GGUF applied by llama.cpp to an F16 GGUF of the base. Mutation
tests show the family's own rules (norm offset, soft-capping) are what makes them agree.
"""
from __future__ import annotations

import pytest

from helpers.export_models import gguf_field, gguf_reader, make_adapter

NEW_FAMILIES = ["qwen3", "phi3", "gemma2", "gemma3"]
ARCH = {"qwen3": "qwen3", "phi3": "phi3", "gemma2": "gemma2", "gemma3": "gemma3"}


def _reference(base, adapter, tokenizer_dir):
    from transformers import AutoTokenizer

    from export.verify import load_reference_model, prompt_ids, reference_logits

    batches = prompt_ids(AutoTokenizer.from_pretrained(tokenizer_dir))
    return batches, reference_logits(load_reference_model(base, adapter), batches)


def _check(gguf_path, batches, want, lora=None):
    from export.verify import compare_logits, gguf_logits

    return compare_logits(want, gguf_logits(gguf_path, batches, lora_path=lora, n_threads=2)[0])


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_base_model_f32_gguf_matches_transformers(tiny, tmp_path, family):
    from export.gguf_writer import write_gguf

    out = write_gguf(tiny[family], tmp_path / "base.gguf", "F32")
    assert gguf_field(gguf_reader(out), "general.architecture") == ARCH[family]
    batches, want = _reference(tiny[family], None, tiny[family])
    result = _check(out, batches, want)
    assert result.n_positions > 50
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 2e-3, result.summary()


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_merged_and_lora_ggufs_match_transformers_with_the_adapter(tiny, tmp_path, family):
    from export.gguf_writer import write_gguf
    from export.lora_gguf import write_lora_gguf
    from export.weights import ModelSource

    base = tiny[family]
    adapter = make_adapter(base, tmp_path / "adapter")
    batches, want = _reference(base, adapter, adapter)
    merged = write_gguf(ModelSource(base, adapter), tmp_path / "merged.gguf", "F16")
    result = _check(merged, batches, want)
    assert result.agreement == 1.0 and result.max_abs_diff < 2e-2, result.summary()

    base_f16 = write_gguf(base, tmp_path / "base.gguf", "F16")
    lora = write_lora_gguf(adapter, base, tmp_path / "lora.gguf")
    with_lora = _check(base_f16, batches, want, lora=lora)
    assert with_lora.agreement == 1.0 and with_lora.max_abs_diff < 2e-2, with_lora.summary()
    without = _check(base_f16, batches, want)
    assert without.max_abs_diff > 0.1  # the adapter matters


def test_phi3_keeps_its_fused_layers_and_their_lora(tiny, tmp_path):
    from export.lora_gguf import write_lora_gguf

    adapter = make_adapter(tiny["phi3"], tmp_path / "adapter")
    names = {t.name for t in gguf_reader(write_lora_gguf(adapter, tiny["phi3"], tmp_path / "l.gguf")).tensors}
    assert {"blk.0.attn_qkv.weight.lora_a", "blk.0.ffn_up.weight.lora_b"} <= names


def test_gemma_norm_offset_is_what_makes_it_agree(tiny, tmp_path, monkeypatch):
    import dataclasses

    import export.arch as arch
    from export.gguf_writer import write_gguf

    monkeypatch.setitem(arch._RULES, "gemma2", dataclasses.replace(arch._RULES["gemma2"], norm_offset=0.0))
    out = write_gguf(tiny["gemma2"], tmp_path / "broken.gguf", "F32")
    batches, want = _reference(tiny["gemma2"], None, tiny["gemma2"])
    assert _check(out, batches, want).max_abs_diff > 0.1


def test_gemma2_soft_capping_is_what_makes_it_agree(tiny, tmp_path, monkeypatch):
    from export.arch import ModelSpec
    from export.gguf_writer import write_gguf

    original = ModelSpec.write_hparams

    def without_softcap(self, writer):
        self.config = {**self.config, "final_logit_softcapping": None, "attn_logit_softcapping": None}
        original(self, writer)

    monkeypatch.setattr(ModelSpec, "write_hparams", without_softcap)
    out = write_gguf(tiny["gemma2"], tmp_path / "nocap.gguf", "F32")
    batches, want = _reference(tiny["gemma2"], None, tiny["gemma2"])
    assert _check(out, batches, want).max_abs_diff > 0.1


def test_gemma3_local_layers_other_than_5_to_1_are_refused(tiny, tmp_path):
    from export.errors import UnsupportedModelError
    from export.gguf_writer import write_gguf
    from helpers.export_models import copy_model, edit_config

    model = edit_config(copy_model(tiny["gemma3"], tmp_path / "m"), layer_types=["full_attention"] * 6)
    with pytest.raises(UnsupportedModelError, match="5:1"):
        write_gguf(model, tmp_path / "x.gguf")

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


def test_gemma3_multimodal_checkpoint_exports_its_text_model(tiny, tmp_path):
    """Gemma 3 4B+ checkpoints nest the text model (model.language_model.*) beside a vision
    tower: the GGUF holds the same text model as the text-only checkpoint's."""
    import json

    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file

    from export.gguf_writer import write_gguf
    from helpers.export_models import copy_model

    text = tiny["gemma3"]
    mm = copy_model(text, tmp_path / "mm")
    state = load_file(str(mm / "model.safetensors"))
    nested = {k.replace("model.", "model.language_model.", 1): v for k, v in state.items()}
    nested["model.vision_tower.vision_model.embeddings.patch_embedding.weight"] = torch.zeros(8, 3, 2, 2)
    nested["model.multi_modal_projector.mm_input_projection_weight"] = torch.zeros(8, 64)
    (mm / "model.safetensors").unlink()
    save_file(nested, str(mm / "model.safetensors"), metadata={"format": "pt"})
    text_cfg = json.loads((text / "config.json").read_text())
    (mm / "config.json").write_text(json.dumps({"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
                                                "text_config": text_cfg, "vision_config": {"hidden_size": 8}}))
    want = {t.name: np.array(t.data) for t in gguf_reader(write_gguf(text, tmp_path / "text.gguf", "F32")).tensors}
    got = {t.name: np.array(t.data) for t in gguf_reader(write_gguf(mm, tmp_path / "mm.gguf", "F32")).tensors}
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_phi3_longrope_short_context_matches_transformers(tiny, tmp_path):
    """Phi-3.5's LongRoPE: factor tables written as llama.cpp's rope_factors_long/short. Both
    pick the short table here: transformers for a sequence within the original context,
    llama.cpp for a context (padded to 256) within it."""
    from export.gguf_writer import write_gguf
    from helpers.export_models import copy_model, edit_config

    model = edit_config(copy_model(tiny["phi3"], tmp_path / "m"), original_max_position_embeddings=512,
                        max_position_embeddings=2048,
                        rope_scaling={"type": "longrope", "long_factor": [1.0 + i for i in range(8)],
                                      "short_factor": [1.0 + 0.25 * i for i in range(8)]},
                        rope_parameters=None)
    out = write_gguf(model, tmp_path / "m.gguf", "F32")
    names = {t.name for t in gguf_reader(out).tensors}
    assert {"rope_factors_long.weight", "rope_factors_short.weight"} <= names
    batches, want = _reference(model, None, model)
    result = _check(out, batches, want)
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 2e-3, result.summary()

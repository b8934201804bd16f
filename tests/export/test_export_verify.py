"""export.verify: the parity check's reference and comparison."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.export_models import make_adapter


def test_16_bit_reference_computes_like_the_fp32_merged_model(tiny, tmp_path):
    """The base in bf16 + PEFT adapter, upcast layer by layer, gives the logits of the merged
    model computed in fp32 on the same (bf16-exact) base weights, not bf16 arithmetic's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from export.verify import load_reference_model, reference_logits

    bf16 = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny["llama"], dtype=torch.bfloat16).save_pretrained(bf16)
    adapter = make_adapter(tiny["llama"], tmp_path / "adapter")
    ids = [[1, 40, 41, 42, 43, 44, 45, 46]]

    model = load_reference_model(bf16, adapter)
    assert {p.dtype for n, p in model.named_parameters() if "lora_" not in n} == {torch.bfloat16}
    got = reference_logits(model, ids)[0]
    assert {p.dtype for n, p in model.named_parameters() if "lora_" not in n} == {torch.bfloat16}

    fp32 = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.float32), adapter)
    want = reference_logits(fp32.merge_and_unload().eval(), ids)[0]
    plain_bf16 = AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.bfloat16)
    bf16_math = reference_logits(PeftModel.from_pretrained(plain_bf16, adapter).eval(), ids)[0]
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(bf16_math - want).max() > 10 * np.abs(got - want).max()


def test_compare_logits_counts_near_ties():
    from export.verify import compare_logits

    want = [np.array([[1.0, 0.99, 0.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0]], dtype=np.float32)]
    got = [np.array([[0.98, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]], dtype=np.float32)]
    result = compare_logits(want, got)
    assert result.n_positions == 3
    assert result.top1_agreement == 1 / 3
    assert result.near_ties == 1                 # position 0: HF's own gap is 0.01
    assert result.agreement == 2 / 3             # position 2 is a real disagreement
    assert result.max_abs_diff == 3.0
    assert not result.tokenizer_checked


def test_big_output_layer_is_upcast_a_slice_at_a_time(tiny, tmp_path, monkeypatch):
    """With a small slice size, the tied output layer and embeddings take the sliced paths:
    same logits as the fp32 model."""
    import torch
    from transformers import AutoModelForCausalLM

    import export.verify as verify

    bf16 = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny["llama"], dtype=torch.bfloat16).save_pretrained(bf16)
    monkeypatch.setattr(verify, "_CHUNK_BYTES", 4 * 64 * 100)  # 100 rows of the 64-wide output layer
    model = verify.load_reference_model(bf16)
    assert "forward" in vars(model.lm_head)  # replaced by the sliced multiplication
    got = verify.reference_logits(model, [[1, 40, 41, 42, 43]])[0]
    want = verify.reference_logits(AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.float32).eval(),
                                   [[1, 40, 41, 42, 43]])[0]
    assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen3", "phi3", "gemma2", "gemma3"])
def test_streamed_reference_equals_the_peft_model(tiny, tmp_path, monkeypatch, family):
    """One layer at a time (and the embeddings and output layer by slices of rows), from the
    merge in export.weights: the logits PEFT's model gives on the same prompts."""
    import export.reference as reference
    from export.verify import load_reference_model, prompt_ids, reference_logits
    from export.weights import ModelSource
    from transformers import AutoTokenizer

    adapter = make_adapter(tiny[family], tmp_path / "adapter")
    batches = prompt_ids(AutoTokenizer.from_pretrained(adapter))
    want = reference_logits(load_reference_model(tiny[family], adapter), batches)
    monkeypatch.setattr(reference, "SLICE_BYTES", 4 * 64 * 50)  # embeddings and lm_head: 50 rows at a time
    got = reference.streamed_logits(ModelSource(tiny[family], adapter), batches)
    assert len(got) == len(want) == len(batches)
    for g, w, ids in zip(got, want, batches):
        assert g.shape == w.shape == (len(ids), w.shape[-1])
        assert np.abs(g - w).max() < 1e-4

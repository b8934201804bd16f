"""export.weights + export.merge: W + scale * B @ A tensor by tensor, and the merged HF copy."""
from __future__ import annotations

import json

import pytest

from helpers.export_models import make_adapter


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits


def test_merge_adapter_equals_peft_model(tiny, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from export.merge import merge_adapter

    base = tiny["llama"]
    adapter = make_adapter(base, tmp_path / "adapter")
    out = tmp_path / "merged"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier export")  # replaced as a whole
    assert merge_adapter(adapter, out) == out
    assert not (out / "stale.txt").exists()
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "merged"]

    ids = [1, 50, 60, 70, 80, 90]
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    plain = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    got, want, before = _logits(merged, ids), _logits(peft_model, ids), _logits(plain, ids)
    assert torch.allclose(got, want, atol=1e-5)
    assert (got - before).abs().max() > 0.05  # the adapter really changed the model


@pytest.mark.parametrize("lora_kwargs", [dict(use_rslora=True, rank_pattern={"v_proj": 2}, alpha_pattern={"o_proj": 3}),
                                         dict(target_modules=["q_proj", "v_proj"], lora_alpha=16)])
def test_scales_and_partial_targets_match_peft(tiny, tmp_path, lora_kwargs):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from export.weights import ModelSource

    base = tiny["mistral"]
    adapter = make_adapter(base, tmp_path / "adapter", **lora_kwargs)
    source = ModelSource(base, adapter)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    merged = peft_model.merge_and_unload().state_dict()
    for name in source.names():
        assert torch.allclose(source.tensor(name), merged[name], atol=1e-6), name


def test_bf16_base_is_merged_in_fp32_and_saved_as_bf16_shards(tiny, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from export.merge import merge_adapter

    bf16 = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny["qwen2"], dtype=torch.bfloat16).save_pretrained(bf16)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bf16 / name).write_bytes((tiny["qwen2"] / name).read_bytes())
    adapter = make_adapter(bf16, tmp_path / "adapter")
    out = merge_adapter(adapter, tmp_path / "merged", max_shard_bytes=40_000)
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 2
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {p.name for p in shards}
    with safe_open(str(shards[0]), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}

    # each weight is (W + scale * B @ A) computed in fp32, then rounded once to bf16
    base = AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.float32)
    want = PeftModel.from_pretrained(base, adapter).merge_and_unload().state_dict()
    got = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor.to(torch.bfloat16).float()), name


def test_adapter_of_another_base_is_refused(tiny, tmp_path):
    from core.errors import InputError
    from export.weights import ModelSource

    adapter = make_adapter(tiny["qwen3"], tmp_path / "adapter")  # qwen3's head_dim 32: other shapes
    with pytest.raises(InputError, match="not trained on"):
        ModelSource(tiny["qwen2"], adapter)


def test_merge_without_adapter_config(tmp_path):
    from core.errors import InputError
    from export.merge import merge_adapter

    (tmp_path / "adapter").mkdir()
    with pytest.raises(InputError, match="adapter_config.json"):
        merge_adapter(tmp_path / "adapter", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dora_is_refused(tiny, tmp_path):
    from export.errors import UnsupportedModelError
    from export.weights import ModelSource

    adapter = make_adapter(tiny["llama"], tmp_path / "adapter")
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(UnsupportedModelError, match="DoRA"):
        ModelSource(tiny["llama"], adapter)

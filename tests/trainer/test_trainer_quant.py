"""trainer.quant: what holds a model in memory while it trains (quantization, dtype, optimizer)."""
import pytest

from core.workspace import Workspace
from trainer.quant import choose_quant, plan_memory
from trainer.train import TrainOptions, build_trainer

pytestmark = pytest.mark.usefixtures("own_twin_cache")


def test_auto_quant_choice():
    assert choose_quant("auto", cuda=False, n_params=3_000_000_000) == "none"
    assert choose_quant("auto", cuda=True, n_params=3_000_000_000) == "4bit"
    assert choose_quant("auto", cuda=True, n_params=135_000_000) == "none"
    assert choose_quant("8bit", cuda=False) == "8bit"
    with pytest.raises(ValueError):
        choose_quant("3bit", cuda=False)


def test_auto_on_a_gpu_is_qlora_with_paged_8bit_adamw():
    plan = plan_memory("auto", cuda=True, n_params=3_000_000_000)
    assert (plan.quant, plan.dtype, plan.optim, plan.gradient_checkpointing) == \
        ("4bit", "bfloat16", "paged_adamw_8bit", True)
    small = plan_memory("auto", cuda=True, n_params=135_000_000)
    assert (small.quant, small.optim, small.gradient_checkpointing) == ("none", None, False)


def test_4bit_on_cpu_loads_16_bit_never_float32():
    plan = plan_memory("4bit", cuda=False, n_params=1_200_000_000)
    assert (plan.quant, plan.dtype, plan.optim, plan.gradient_checkpointing) == ("4bit", "bfloat16", None, True)
    assert plan_memory("none", cuda=False, n_params=135_000_000).dtype == "float32"


def test_gradient_checkpointing_from_1b_parameters():
    assert not plan_memory("none", cuda=False, n_params=999_999_999).gradient_checkpointing
    assert plan_memory("none", cuda=False, n_params=1_000_000_000).gradient_checkpointing
    assert plan_memory("none", cuda=True, n_params=8_000_000_000).gradient_checkpointing


def test_a_1b_model_trains_with_gradient_checkpointing(train_workspace, tiny_llama, monkeypatch):
    import trainer.train as train

    monkeypatch.setattr(train, "_count_params", lambda _path: 1_200_000_000)  # as if the tiny model were 1.2B
    trainer, _, quant = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=1),
                                      log=lambda *_: None)
    assert quant == "none" and trainer.args.activation_checkpointing
    monkeypatch.setattr(train, "_count_params", lambda _path: 135_000_000)
    trainer, _, _ = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=1),
                                  log=lambda *_: None)
    assert not trainer.args.activation_checkpointing


def test_qlora_4bit_trains_on_cpu_without_a_float32_copy(train_workspace, tiny_llama):
    import bitsandbytes as bnb
    import torch

    from trainer.train import run_training

    trainer, _, quant = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), quant="4bit",
                                                                               max_steps=2, save_steps=100),
                                      log=lambda *_: None)
    assert quant == "4bit"
    linear4 = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4 and linear4[0].weight.quant_state.quant_type == "nf4"
    assert linear4[0].weight.quant_state.nested  # double quantization
    frozen_float32 = [n for n, p in trainer.model.named_parameters()
                      if p.dtype == torch.float32 and not p.requires_grad]
    assert not frozen_float32  # embeddings and norms in bf16; the linear layers in 4 bits
    summary = run_training(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), quant="4bit", max_steps=2,
                                                                    save_steps=100), log=lambda *_: None)
    assert summary["quant"] == "4bit" and summary["steps"] == 2
    assert (train_workspace / "adapter" / "adapter_model.safetensors").is_file()

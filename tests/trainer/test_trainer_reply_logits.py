"""trainer.reply_logits: TRL's LM head scores reply positions only on CPU, with the same loss and gradients."""
import pytest

from core.workspace import Workspace
from trainer.train import TrainOptions, build_trainer


def test_reply_only_lm_head_gives_the_same_loss_and_gradients(train_workspace, tiny_llama, monkeypatch):
    import torch
    import trl.trainer.utils as trl_utils

    from trainer.reply_logits import score_reply_positions_only

    trainer, _, _ = build_trainer(Workspace(train_workspace), TrainOptions(base=str(tiny_llama), max_steps=1),
                                  log=lambda *_: None)
    assert score_reply_positions_only() and trl_utils._use_triton(torch.device("cpu")) is True
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(6)]))
    lora = [p for p in trainer.model.parameters() if p.requires_grad]
    trainer.model.eval()  # no dropout: both passes see the same network

    def loss_and_grads():
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        return loss.item(), [p.grad.clone() for p in lora]

    reply_only = loss_and_grads()
    monkeypatch.setattr(trl_utils, "_use_triton", trl_utils._use_triton.original)  # TRL's own CPU path
    assert trl_utils._use_triton(torch.device("cpu")) is False
    every_position = loss_and_grads()
    assert reply_only[0] == pytest.approx(every_position[0], rel=1e-5)
    for a, b in zip(reply_only[1], every_position[1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)

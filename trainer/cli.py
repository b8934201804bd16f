"""The ``twin train`` command: WORKSPACE/data -> WORKSPACE/adapter."""
from __future__ import annotations

from pathlib import Path

import click

from dataprocess.workspace import Workspace

from .base_model import DEFAULT_BASE, BaseModelError
from .quant import QUANT_CHOICES
from .train import TrainingError, TrainOptions, run_training


@click.command("train")
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace directory prepared by `twin process`.")
@click.option("--base", default=None, help=f"Base model: '{DEFAULT_BASE}' (embedded default), a local "
              "Hugging Face directory, or a hub id.")
@click.option("--quant", type=click.Choice(QUANT_CHOICES), default="auto", show_default=True,
              help="Weight quantization while training: 4bit (QLoRA NF4), 8bit or none.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True)
@click.option("--max-steps", type=int, default=-1, show_default=True,
              help="Stop after this many optimizer steps (overrides --epochs when > 0).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--grad-accum", type=click.IntRange(min=1), default=1, show_default=True,
              help="Gradient accumulation steps.")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True)
@click.option("--lora-r", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lora-alpha", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--save-steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="Save a checkpoint every N steps.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in WORKSPACE/adapter/checkpoints.")
@click.option("--group-by-length", is_flag=True,
              help="Batch examples of similar length: ~2x faster on CPU, but learned less per step in a short run.")
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(workspace, base, quant, epochs, max_steps, batch_size, grad_accum, learning_rate, lora_r,
                  lora_alpha, save_steps, resume, group_by_length, seed):
    """Fine-tune a LoRA adapter on WORKSPACE/data (the loss is on your replies only)."""
    options = TrainOptions(base=base, quant=quant, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                           grad_accum=grad_accum, learning_rate=learning_rate, lora_r=lora_r,
                           lora_alpha=lora_alpha, save_steps=save_steps, resume=resume,
                           group_by_length=group_by_length, seed=seed)
    try:
        summary = run_training(Workspace(workspace), options, log=click.echo)
    except (TrainingError, BaseModelError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: rerun with --resume to continue from the last checkpoint") from None
    losses = ", ".join(f"{k} {summary[k]:.3f}" for k in ("train_loss", "eval_loss") if summary.get(k) is not None)
    click.echo(f"trained {summary['steps']} steps ({losses}); adapter saved to {Path(workspace) / 'adapter'}")

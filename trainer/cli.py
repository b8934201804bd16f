"""The ``twin train`` command: WORKSPACE/data -> WORKSPACE/adapter."""
from __future__ import annotations

from pathlib import Path

import click

from core.workspace import Workspace

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
@click.option("--lr-scheduler", type=click.Choice(["cosine", "linear", "constant", "constant_with_warmup"]),
              default="cosine", show_default=True)
@click.option("--warmup", type=click.FloatRange(min=0, max=1, max_open=True), default=0.05, show_default=True,
              help="Share of the run spent warming up the learning rate.")
@click.option("--lora-r", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lora-alpha", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lora-dropout", type=click.FloatRange(min=0, max=1, max_open=True), default=0.05, show_default=True)
@click.option("--max-length", type=click.IntRange(min=16), default=512, show_default=True,
              help="Longest example in tokens; longer ones lose their oldest turns.")
@click.option("--save-steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="Save a checkpoint every N steps.")
@click.option("--eval-steps", type=click.IntRange(min=1), default=None,
              help="Validate every N steps (default: at the end of each epoch).")
@click.option("--patience", type=click.IntRange(min=0), default=1, show_default=True,
              help="Stop after this many validations without improvement (0: never stop early). "
                   "The adapter with the best validation loss is the one kept.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in WORKSPACE/adapter/checkpoints.")
@click.option("--padding-free/--no-padding-free", default=True, show_default=True,
              help="Lay each batch's examples end to end instead of padding them to one length.")
@click.option("--group-by-length", is_flag=True,
              help="Batch examples of similar length (only helps padded batches; learned less in a short run).")
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="TensorBoard logs in WORKSPACE/adapter/runs [default: when tensorboard is installed].")
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(workspace, base, quant, epochs, max_steps, batch_size, grad_accum, learning_rate, lr_scheduler,
                  warmup, lora_r,
                  lora_alpha, lora_dropout, max_length, save_steps, eval_steps, patience, resume, padding_free,
                  group_by_length, tensorboard, seed):
    """Fine-tune a LoRA adapter on WORKSPACE/data (the loss is on your replies only)."""
    options = TrainOptions(base=base, quant=quant, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                           grad_accum=grad_accum, learning_rate=learning_rate, lr_scheduler=lr_scheduler,
                           warmup=warmup, lora_r=lora_r,
                           lora_alpha=lora_alpha, lora_dropout=lora_dropout, max_length=max_length,
                           save_steps=save_steps, eval_steps=eval_steps, patience=patience, resume=resume,
                           padding_free=padding_free, group_by_length=group_by_length, tensorboard=tensorboard,
                           seed=seed)
    try:
        summary = run_training(Workspace(workspace), options, log=click.echo)
    except (TrainingError, BaseModelError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: rerun with --resume to continue from the last checkpoint") from None
    losses = ", ".join(f"{k} {summary[k]:.3f}" for k in ("train_loss", "eval_loss") if summary.get(k) is not None)
    kept = f" (the adapter of step {summary['adapter_step']})" if summary["adapter_step"] != summary["steps"] else ""
    click.echo(f"trained {summary['steps']} steps ({losses}); adapter saved to {Path(workspace) / 'adapter'}{kept}")

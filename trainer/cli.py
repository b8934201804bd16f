"""The ``twin train`` command: WORKSPACE/data -> WORKSPACE/adapter.

Every option's default is :class:`~trainer.train.TrainOptions`' own, read from the dataclass.
Under ``torchrun`` / ``accelerate launch`` each process runs this command; only the main one
prints.
"""
from __future__ import annotations

from pathlib import Path

import click

from core.errors import cli_errors
from core.workspace import Workspace

from .base_model import DEFAULT_BASE
from .quant import QUANT_CHOICES
from .train import TrainOptions, is_main_process, run_training

D = TrainOptions()  # the defaults


@click.command("train")
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace directory prepared by `twin process`.")
@click.option("--base", default=D.base, help=f"Base model: '{DEFAULT_BASE}' (embedded default), a local "
              "Hugging Face directory, or a hub id.")
@click.option("--quant", type=click.Choice(QUANT_CHOICES), default=D.quant, show_default=True,
              help="Weight quantization while training: 4bit (QLoRA NF4; the weights are loaded straight into "
                   "4-bit, so a big model fits on CPU too), 8bit or none. auto: 4bit with paged 8-bit AdamW on "
                   "a GPU for models of 1B+ parameters, none otherwise.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=D.epochs, show_default=True,
              help="Passes over the training data [default: fitted to the dataset's size, at least 225 steps "
                   "and 3-20 epochs; early stopping ends it sooner].")
@click.option("--max-steps", type=int, default=D.max_steps, show_default=True,
              help="Stop after this many optimizer steps (overrides --epochs when > 0).")
@click.option("--batch-size", type=click.IntRange(min=1), default=D.batch_size, show_default=True,
              help="Examples per step and process.")
@click.option("--grad-accum", type=click.IntRange(min=1), default=D.grad_accum, show_default=True,
              help="Gradient accumulation steps.")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), default=D.learning_rate,
              show_default=True)
@click.option("--lr-scheduler", type=click.Choice(["cosine", "linear", "constant", "constant_with_warmup"]),
              default=D.lr_scheduler, show_default=True)
@click.option("--warmup", type=click.FloatRange(min=0, max=1, max_open=True), default=D.warmup, show_default=True,
              help="Share of the run spent warming up the learning rate.")
@click.option("--lora-r", type=click.IntRange(min=1), default=D.lora_r, show_default=True)
@click.option("--lora-alpha", type=click.IntRange(min=1), default=D.lora_alpha, show_default=True)
@click.option("--lora-dropout", type=click.FloatRange(min=0, max=1, max_open=True), default=D.lora_dropout,
              show_default=True)
@click.option("--max-length", type=click.IntRange(min=16), default=D.max_length, show_default=True,
              help="Longest example in tokens; longer ones lose their oldest turns.")
@click.option("--save-steps", type=click.IntRange(min=1), default=D.save_steps, show_default=True,
              help="Save a checkpoint every N steps.")
@click.option("--eval-steps", type=click.IntRange(min=1), default=D.eval_steps,
              help="Validate every N steps (default: at the end of each epoch).")
@click.option("--patience", type=click.IntRange(min=0), default=D.patience, show_default=True,
              help="Stop after this many validations without improvement (0: never stop early) "
                   "[default: 1 to 3, more when there are more validations]. The adapter with the best "
                   "validation is the one kept.")
@click.option("--resume", is_flag=True, default=D.resume,
              help="Continue from the last checkpoint in WORKSPACE/adapter/checkpoints.")
@click.option("--padding-free/--no-padding-free", default=D.padding_free, show_default=True,
              help="Lay each batch's examples end to end instead of padding them to one length.")
@click.option("--group-by-length", is_flag=True, default=D.group_by_length,
              help="Batch examples of similar length (only helps padded batches; learned less in a short run).")
@click.option("--tensorboard/--no-tensorboard", default=D.tensorboard,
              help="TensorBoard logs in WORKSPACE/adapter/runs [default: when tensorboard is installed].")
@click.option("--seed", type=int, default=D.seed, show_default=True)
def train_command(workspace: Path, **options):
    """Fine-tune a LoRA adapter on WORKSPACE/data (the loss is on your replies only).

    \b
    On several GPUs (or CPU processes), launch it with torchrun or accelerate:
      torchrun --nproc_per_node 2 --no-python twin train -w WORKSPACE
      accelerate launch --multi_gpu --num_processes 2 --no_python twin train -w WORKSPACE
    Each process trains on its share of every batch (--batch-size is per process);
    the main one writes the adapter, the log and twin.toml.
    """
    main = is_main_process()
    with cli_errors("interrupted: rerun with --resume to continue from the last checkpoint"):
        summary = run_training(Workspace(workspace), TrainOptions(**options),
                               log=click.echo if main else (lambda *_: None))
    if not main:
        return
    losses = ", ".join(f"{k} {summary[k]:.3f}" for k in ("train_loss", "eval_loss") if summary.get(k) is not None)
    kept = f" (the adapter of step {summary['adapter_step']})" if summary["adapter_step"] != summary["steps"] else ""
    click.echo(f"trained {summary['steps']} steps ({losses}); adapter saved to {Path(workspace) / 'adapter'}{kept}")

"""The ``twin update`` command: new messages since the last run -> a retrained, re-exported twin.

1. data (dataprocess.incremental): the new exports are read with the workspace's own rules and
   persona; messages processed before (WORKSPACE/data/seen.npy: content and time) are dropped;
   the new messages' examples are staged beside the merged splits;
2. train (trainer.train): training continues from the current adapter's weights (not a fresh
   LoRA) on the new train examples plus a replay sample of the old ones (``--replay-ratio`` old
   per new), ``--epochs`` passes over them (or ``--max-steps``); the adapter is saved as
   ``twin train`` saves it (validated on the merged valid split: old and new), then the merged splits, the report (an ``updates`` entry: new and
   duplicate messages, new examples per split, replayed ones) and the index move into data/;
3. ``twin eval`` (trainer.evaluate) and ``twin export`` (export.pipeline, the quantization of the
   GGUF already there) run again; a running ``twin serve --workspace W`` swaps to the new GGUF
   by itself (server.hot_swap).

Every step writes through a temporary file or folder and a rename (core.atomic), and the served
model is the previous GGUF until the new one is complete: an interrupted update leaves the
previous twin working (rerun the command, or after step 2 `twin eval` / `twin export`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from core import artifacts
from core.errors import cli_errors
from core.workspace import Workspace
from dataprocess.cli import reading_options
from dataprocess.incremental import NothingNew, stage_update

from .train import TrainOptions, run_training

D = TrainOptions()
UPDATE_EPOCHS = 2.0  # passes over new + replay: enough to learn the new, too few to forget the old


@dataclass
class UpdateOptions:
    fmt: str | None = None
    me: str | None = None
    dayfirst: bool | None = None
    replay_ratio: float = 1.0
    epochs: float = UPDATE_EPOCHS
    max_steps: int = -1
    learning_rate: float = D.learning_rate
    batch_size: int = D.batch_size
    evaluate: bool = True
    export: bool = True
    quant: str | None = None      # None: the quantization of the model GGUF already exported
    verify: str = "full"
    seed: int = 0


@dataclass
class UpdateResult:
    new_messages: int = 0
    duplicate_messages: int = 0
    new_examples: dict = field(default_factory=dict)
    replay_examples: int = 0
    trained: dict | None = None
    evaluated: dict | None = None
    exported: Path | None = None
    seconds: dict = field(default_factory=dict)  # each step's wall time


def exported_quant(workspace: Workspace) -> str | None:
    """The quantization of the newest model GGUF (``twin-Q8_0.gguf`` -> ``Q8_0``), None if none."""
    found = artifacts.model_ggufs(workspace.model_dir)
    return found[-1].name[len("twin-"):-len(".gguf")] if found else None


def run_update(inputs: list[Path], workspace: Workspace, options: UpdateOptions | None = None,
               log=print) -> UpdateResult:
    """Steps 1-3 of the module docstring; :class:`~dataprocess.incremental.NothingNew` when the
    exports hold nothing new to learn (the workspace is then unchanged)."""
    options = options or UpdateOptions()
    workspace.require_adapter()
    result = UpdateResult()
    started = time.perf_counter()
    staged = stage_update(inputs, workspace, fmt=options.fmt, me=options.me, dayfirst=options.dayfirst,
                          replay_ratio=options.replay_ratio, seed=options.seed)
    result.new_messages, result.duplicate_messages = staged.new_messages, staged.duplicate_messages
    result.new_examples, result.replay_examples = staged.new_examples, staged.replay_examples
    result.seconds["data"] = time.perf_counter() - started
    try:
        if not staged.trainable:
            staged.commit()
            log("no new training example (the new conversations went to valid/test): the model is unchanged")
            return result
        log(f"training on {staged.new_examples['train']} new + {staged.replay_examples} replayed examples, "
            "from the current adapter")
        started = time.perf_counter()
        result.trained = run_training(workspace, TrainOptions(
            train_file=staged.train_file, valid_file=staged.valid_file, from_adapter=workspace.adapter_dir,
            checkpoints_dir=staged.staging / "checkpoints", epochs=options.epochs, max_steps=options.max_steps,
            learning_rate=options.learning_rate, batch_size=options.batch_size, patience=0,
            seed=options.seed), log=log)
        result.seconds["train"] = time.perf_counter() - started
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    if options.evaluate:
        from .evaluate import EvalOptions, run_eval

        started = time.perf_counter()
        result.evaluated = run_eval(workspace, EvalOptions(base=False, seed=options.seed), log=log)
        result.seconds["eval"] = time.perf_counter() - started
    quant = options.quant or exported_quant(workspace)
    if options.export and quant:
        from export.pipeline import ExportOptions, run_export

        started = time.perf_counter()
        exported = run_export(workspace, ExportOptions(quant=quant, verify=options.verify), log=log)
        result.exported = exported.model_gguf or workspace.model_gguf(quant)
        result.seconds["export"] = time.perf_counter() - started
    elif options.export:
        log(f"no exported model in {workspace.model_dir} yet: run `twin export --workspace {workspace.root}` "
            "to serve the updated twin")
    return result


@click.command("update")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A workspace with a trained adapter (twin process + twin train).")
@reading_options
@click.option("--me", help="Your name in exports that do not say who you are (the persona stays the workspace's).")
@click.option("--replay-ratio", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Old training examples replayed per new one, so the twin does not forget.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=UPDATE_EPOCHS, show_default=True,
              help="Passes over the new + replayed examples.")
@click.option("--max-steps", type=int, default=-1, show_default=True,
              help="Stop after this many optimizer steps (overrides --epochs when > 0).")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), default=D.learning_rate,
              show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=D.batch_size, show_default=True)
@click.option("--eval/--no-eval", "evaluate", default=True, show_default=True,
              help="Run `twin eval` on the updated twin (it also refits the decoding defaults).")
@click.option("--export/--no-export", "export", default=True, show_default=True,
              help="Export the updated twin (the GGUF's quantization stays as it was); a running "
                   "`twin serve --workspace` swaps to it by itself.")
@click.option("--quant", help="Export with this GGUF type instead of the current one.")
@click.option("--verify", type=click.Choice(("full", "quick", "off")), default="full", show_default=True,
              help="The export's parity check (see `twin export --help`).")
@click.option("--seed", type=int, default=0, show_default=True)
def update_command(inputs, workspace, fmt, dayfirst, me, replay_ratio, epochs, max_steps, learning_rate, batch_size,
                   evaluate, export, quant, verify, seed):
    """Learn the new messages of NEW_EXPORTS: drop what was processed before, continue training
    from the current adapter (new examples + a replay of old ones), re-evaluate and re-export."""
    options = UpdateOptions(fmt=None if fmt == "auto" else fmt, me=me, dayfirst=dayfirst, replay_ratio=replay_ratio,
                            epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size,
                            evaluate=evaluate, export=export, quant=quant.upper() if quant else None, verify=verify,
                            seed=seed)
    with cli_errors("interrupted: the previous model is still in place; run the same command again"):
        try:
            result = run_update(list(inputs), Workspace(workspace), options, log=click.echo)
        except NothingNew as exc:
            click.echo(f"{exc}: the twin is unchanged")
            return
    click.echo(f"new: {result.new_messages} messages ({result.duplicate_messages} processed before were skipped); "
               "examples " + ", ".join(f"{k} +{v}" for k, v in result.new_examples.items())
               + f"; {result.replay_examples} old ones replayed")
    if result.trained:
        click.echo(f"trained {result.trained['steps']} steps from the previous adapter"
                   + (f" (eval loss {result.trained['eval_loss']:.3f})" if result.trained.get("eval_loss") else ""))
    if result.evaluated:
        accuracy = result.evaluated.get("classifier_accuracy", {}).get("twin")
        click.echo(f"eval: classifier accuracy {accuracy:.3f}" if isinstance(accuracy, float) else "eval: done")
    if result.exported:
        click.echo(f"exported {result.exported}; `twin serve --workspace {workspace}` picks it up without a restart")
    click.echo("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))

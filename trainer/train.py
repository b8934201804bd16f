"""LoRA / QLoRA fine-tuning of the base model on WORKSPACE/data with TRL's SFTTrainer.

The data is TRL's conversational prompt-completion format, so TRL renders it with the chat
template and masks the loss on the prompt: only the reply, ended by the template's end-of-turn
token (which stands for the data files' `` DONE``: ``core.terminator``), is learned. The adapter and the tokenizer it was trained with go to WORKSPACE/adapter;
checkpoints to WORKSPACE/adapter/checkpoints for ``--resume``.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core import artifacts
from core.atomic import temp_sibling
from core.settings import TrainRecord
from core.workspace import Workspace

from .base_model import record_base, resolve_base
from .data import fit_to_length, load_split
from .errors import BaseModelError, TrainingInputError
from .quant import plan_memory, quantization_config
from .tokens import prepare_tokenizer


@dataclass
class TrainOptions:
    base: str | None = None
    quant: str = "auto"
    epochs: float | None = None        # None: from the dataset's size (trainer.schedule)
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup: float = 0.05               # share of the run spent warming up the learning rate
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 512
    save_steps: int = 50
    eval_steps: int | None = None      # validate every N steps; None: at the end of each epoch
    patience: int | None = None        # evaluations without improvement before stopping; 0: never; None: by schedule
    resume: bool = False
    padding_free: bool = True
    reply_logits_only: bool = True     # CPU: LM head on reply positions only (trainer.reply_logits; process-wide once on)
    group_by_length: bool = False
    tensorboard: bool | None = None    # None: when the tensorboard package is installed
    # greedy valid replies at each validation (trainer.valid_replies), their termination and loop
    # rates part of choosing the adapter; None: with per-epoch validation only (validating every
    # few --eval-steps, generating replies each time would cost more than the training)
    track_replies: bool | None = None
    seed: int = 0
    # `twin update` (trainer.update): train (and validate) on these split files instead of
    # data/{train,valid}.jsonl, starting from this PEFT adapter's weights (not a fresh LoRA),
    # checkpoints in this folder
    train_file: Path | None = None
    valid_file: Path | None = None
    from_adapter: Path | None = None
    checkpoints_dir: Path | None = None


def _last_checkpoint(checkpoints: Path) -> str | None:
    """The newest *complete* checkpoint. transformers writes a checkpoint in place and its
    ``trainer_state.json`` last, so a run killed while saving leaves a directory without a
    readable one; its own ``get_last_checkpoint`` would pick that directory and fail."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not checkpoints.is_dir():
        return None
    numbered = []
    for path in checkpoints.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = path.name.rsplit("-", 1)[1]
        if path.is_dir() and suffix.isdigit():
            numbered.append((int(suffix), path))
    for _, path in sorted(numbered, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # incomplete: interrupted while it was being written
        return str(path)
    return None


def run_training(workspace: Workspace, options: TrainOptions, log=print) -> dict:
    """Fine-tune and save the adapter; returns a summary (steps, losses, quantization, best step).

    Under ``torchrun`` / ``accelerate launch`` every process trains (DDP) and only the main one
    logs and writes: the adapter, train_log.jsonl, twin.toml, the progress bar."""
    main = is_main_process()
    if not main:
        log = _silent
    trainer, base_path, quant = build_trainer(workspace, options, log)
    checkpoints = Path(trainer.args.output_dir)
    resume_from = _last_checkpoint(checkpoints) if options.resume else None
    if options.resume and not resume_from:
        log("no checkpoint to resume from: starting from the beginning")
    if not resume_from and main:
        (workspace.adapter_dir / artifacts.TRAIN_LOG).unlink(missing_ok=True)
        _best_callback(trainer).clear()
    result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(result.metrics)
    best = _best_callback(trainer)  # after a resume: the one rebuilt from the checkpoint
    if trainer.eval_dataset is not None:
        metrics["eval_loss"] = _final_eval_loss(trainer)
    if best.stopped_early:
        log(f"stopped early at step {trainer.state.global_step}: the validation loss had not improved "
            f"for {best.evals_without_improvement} evaluation(s)")
    kept_step = trainer.state.global_step
    if best.restore_best(trainer.model, metrics.get("eval_loss")):
        kept_step = best.best_step
        log(f"keeping the adapter from step {best.best_step} (validation loss {best.best_loss:.4f}; "
            f"the last step's was {metrics['eval_loss']:.4f})")
        metrics["eval_loss"] = best.best_loss
    record = TrainRecord(quant=quant, steps=trainer.state.global_step, adapter_step=kept_step,
                         stopped_early=best.stopped_early, train_loss=metrics.get("train_loss"),
                         eval_loss=metrics.get("eval_loss"))
    if main:  # one process writes what the run made
        _save_adapter(trainer.model, trainer.processing_class, workspace.adapter_dir)
        settings = workspace.settings()
        if options.from_adapter and settings.train is not None:  # the same base as before
            record.base, record.base_fingerprint = settings.train.base, settings.train.base_fingerprint
        else:
            record.base, record.base_fingerprint = record_base(options.base, base_path)
        settings.train = record
        workspace.save_settings(settings)
    return {**record.__dict__, "base_path": base_path}


def _silent(*_args, **_kwargs) -> None:
    pass


def _best_callback(trainer):
    from .best_adapter import BestAdapterCallback

    return next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, BestAdapterCallback))


def _final_eval_loss(trainer) -> float:
    """The validation loss of the weights training ended with: the last evaluation's if it was
    taken at the final step, else a fresh one."""
    history = trainer.state.log_history
    last = next((h for h in reversed(history) if "eval_loss" in h), None)
    if last is not None and last.get("step") == trainer.state.global_step:
        return float(last["eval_loss"])
    return float(trainer.evaluate()["eval_loss"])


def build_trainer(workspace: Workspace, options: TrainOptions, log=print):
    """The configured ``SFTTrainer`` (LoRA attached, data tokenized and masked), its base
    model path and the chosen quantization."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import ProgressCallback
    from trl import SFTConfig, SFTTrainer

    # these import transformers: kept out of `twin --help`
    from .best_adapter import BestAdapterCallback
    from .progress import JsonlLogCallback, ProgressBarCallback

    train_rows = load_split(workspace, "train", options.train_file)
    valid_rows = load_split(workspace, "valid", options.valid_file)
    cuda = torch.cuda.is_available()
    with _main_process_first(cuda):  # the embedded base is converted once, by the main process
        if options.from_adapter:
            from .base_model import workspace_base

            base_path = workspace_base(workspace, options.base, log=log)
        else:
            base_path = resolve_base(options.base, log=log)
    try:  # continuing an adapter: the tokenizer it was trained with
        tokenizer = AutoTokenizer.from_pretrained(options.from_adapter or base_path)
    except OSError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseModelError(f"cannot load base model {options.base or base_path!r}: {first_line}") from None
    added_pad = prepare_tokenizer(tokenizer)

    train_rows, fitted = fit_to_length(train_rows, tokenizer, options.max_length)
    if fitted.shortened or fitted.dropped:
        log(f"--max-length {options.max_length}: {fitted.shortened} training examples lost their oldest turns, "
            f"{fitted.dropped} were too long even so and were left out")
    if not train_rows:
        raise TrainingInputError(f"no training example fits in --max-length {options.max_length} tokens")
    if valid_rows is not None:
        valid_rows, _ = fit_to_length(valid_rows, tokenizer, options.max_length)
    epochs, patience = _schedule(options, len(train_rows), log)
    train_data = Dataset.from_list(train_rows)
    valid_data = Dataset.from_list(valid_rows) if valid_rows else None

    n_params = _count_params(base_path)
    memory = plan_memory(options.quant, cuda=cuda, n_params=n_params,
                         bf16_supported=cuda and torch.cuda.is_bf16_supported())
    quant = memory.quant
    if options.quant == "auto":
        log(f"quantization: {quant} ({'GPU' if cuda else 'CPU'}, "
            f"{n_params / 1e6:,.1f}M parameters)" if n_params else f"quantization: {quant}")
    compute_dtype = getattr(torch, memory.dtype)
    # A quantized model is quantized tensor by tensor as it loads, from the checkpoint's own
    # 16-bit weights (trainer.quant): no full-precision copy is ever made.
    model = AutoModelForCausalLM.from_pretrained(
        base_path, dtype=compute_dtype, quantization_config=quantization_config(quant, compute_dtype),
        device_map={"": int(os.environ.get("LOCAL_RANK", "0"))} if cuda and quant != "none" else None,
    )
    if added_pad or len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    tensorboard = _tensorboard_available() if options.tensorboard is None else options.tensorboard
    checkpoints = Path(options.checkpoints_dir or workspace.checkpoints_dir)
    evaluate = "no" if valid_data is None else "steps" if options.eval_steps else "epoch"
    config = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=epochs,
        max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.learning_rate,
        lr_scheduler_type=options.lr_scheduler,
        warmup_steps=options.warmup,  # a float below 1 is a fraction of the run
        logging_steps=5,
        save_steps=options.save_steps,
        save_total_limit=2,
        eval_strategy=evaluate,
        eval_steps=options.eval_steps,
        # Padding-free: each batch is one row of the examples laid end to end (positions restart
        # per example, so attention stays within each), so no compute goes to padding; the loss
        # is the same mean over the same reply tokens as with padded batches. The examples were
        # fitted to max_length above, which TRL does not enforce in this mode.
        padding_free=options.padding_free,
        max_length=None if options.padding_free else options.max_length,
        completion_only_loss=True,
        # Batches of similar lengths waste less compute on padding, but learned less in a short run
        # (80 steps: eval loss 2.07 vs 1.87); padding-free gets the speed without changing batches.
        train_sampling_strategy="group_by_length" if options.group_by_length else "random",
        # Small models fit in memory without it, and recomputing activations costs ~30% speed.
        activation_checkpointing=memory.gradient_checkpointing,  # transformers' new name for gradient checkpointing
        **({"optim": memory.optim} if memory.optim else {}),
        bf16=cuda and compute_dtype == torch.bfloat16,  # on CPU a quantized model is bf16 already
        use_cpu=not cuda,
        include_num_input_tokens_seen="non_padding",
        report_to="none",  # TensorBoard, when wanted, is added below with its directory in the workspace
        seed=options.seed,
        dataloader_num_workers=0,
    )
    lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    train_log = workspace.adapter_dir / artifacts.TRAIN_LOG
    callbacks = [JsonlLogCallback(train_log)]
    if valid_rows and (options.track_replies if options.track_replies is not None else not options.eval_steps):
        from .valid_replies import ValidRepliesCallback

        callbacks.append(ValidRepliesCallback(valid_rows, tokenizer, log_path=train_log, write=log,
                                              sampling=workspace.settings().sampling))
    callbacks.append(BestAdapterCallback(str(checkpoints / artifacts.BEST_ADAPTER_DIR), patience=patience))
    if tensorboard and is_main_process():
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(workspace.adapter_dir / artifacts.TENSORBOARD_DIR))))
    if options.reply_logits_only:
        from .reply_logits import score_reply_positions_only

        score_reply_positions_only()
    if options.from_adapter:  # continue from the adapter's weights (and its own LoRA settings)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(options.from_adapter), is_trainable=True)
        lora = None
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_data, eval_dataset=valid_data,
                         processing_class=tokenizer, peft_config=lora, callbacks=callbacks)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ProgressBarCallback(write=log))
    return trainer, base_path, quant


def is_main_process() -> bool:
    """Whether this process reports and writes: rank 0 under ``torchrun`` / ``accelerate
    launch`` (which set ``RANK``), or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


def _main_process_first(cuda: bool):
    """A context in which the main process runs first and the others after it (a no-op in a
    single process), so that work they share (converting the base) is done once."""
    import contextlib

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return contextlib.nullcontext()
    from accelerate import PartialState

    return PartialState(cpu=not cuda).main_process_first()


def _schedule(options: TrainOptions, examples: int, log) -> tuple[float, int]:
    """Epochs and patience: as given, or fitted to the dataset's size (trainer.schedule)."""
    from .schedule import patience_for, plan

    epochs = options.epochs
    if epochs is None:
        chosen = plan(examples, options.batch_size, options.grad_accum, int(os.environ.get("WORLD_SIZE", "1")))
        epochs = chosen.epochs
        if options.max_steps <= 0:
            log(f"schedule: {examples} training examples, {chosen.epochs} epochs of {chosen.steps_per_epoch} steps "
                "at most (validated after each; early stopping ends it sooner)")
    patience = options.patience if options.patience is not None else patience_for(epochs)
    return epochs, patience


def _tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _count_params(base_path: str) -> int | None:
    """Parameter count from the config alone (no weights loaded), or None when unknown."""
    try:
        from transformers import AutoConfig, AutoModelForCausalLM
        import torch

        config = AutoConfig.from_pretrained(base_path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - an estimate only; `auto` falls back to the device rule
        return None


def _save_adapter(model, tokenizer, adapter_dir: Path) -> None:
    """Save adapter + tokenizer into a temp dir, then move the files in (never half-written).

    Not ``core.atomic.atomic_dir``: WORKSPACE/adapter also holds the checkpoints and the logs,
    which must stay. The adapter's files are staged in a hidden sibling and renamed in one by
    one, ``adapter_config.json`` (whose presence marks a complete adapter) removed first and
    put back last."""
    adapter_dir.mkdir(parents=True, exist_ok=True)
    staging = temp_sibling(adapter_dir / artifacts.ADAPTER_DIR, ".saving")
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (adapter_dir / artifacts.ADAPTER_CONFIG).unlink(missing_ok=True)
        for name in sorted((p.name for p in staging.iterdir()), key=lambda n: n == artifacts.ADAPTER_CONFIG):
            os.replace(staging / name, adapter_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

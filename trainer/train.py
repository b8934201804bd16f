"""LoRA / QLoRA fine-tuning of the base model on WORKSPACE/data with TRL's SFTTrainer.

The data is TRL's conversational prompt-completion format, so TRL renders it with the chat
template and masks the loss on the prompt: only the reply (ending `` DONE`` and the end-of-turn
token) is learned. The adapter and the tokenizer it was trained with go to WORKSPACE/adapter;
checkpoints to WORKSPACE/adapter/checkpoints for ``--resume``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dataprocess.workspace import Workspace

from .base_model import DEFAULT_BASE, resolve_base
from .quant import choose_quant, quantization_config
from .tokens import prepare_tokenizer


class TrainingError(RuntimeError):
    """Training cannot start or go on (missing data, unusable model, ...)."""


@dataclass
class TrainOptions:
    base: str | None = None
    quant: str = "auto"
    epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 2e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 512
    save_steps: int = 50
    resume: bool = False
    group_by_length: bool = False
    seed: int = 0


def _load_split(workspace: Workspace, split: str):
    from datasets import Dataset

    path = workspace.split_path(split)
    if not path.is_file():
        if split == "train":
            raise TrainingError(f"{path} not found: run `twin process ... --workspace {workspace.root}` first")
        return None
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                rows.append({"prompt": record["prompt"], "completion": record["completion"]})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise TrainingError(f"{path}:{number}: not a prompt/completion record") from None
    if not rows:
        return None if split != "train" else _raise(TrainingError(f"{path} holds no examples"))
    return Dataset.from_list(rows)


def _raise(exc):
    raise exc


def _last_checkpoint(checkpoints: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None


def run_training(workspace: Workspace, options: TrainOptions, log=print) -> dict:
    """Fine-tune and save the adapter; returns a summary (steps, losses, quantization)."""
    trainer, base_path, quant = build_trainer(workspace, options, log)
    checkpoints = Path(trainer.args.output_dir)
    resume_from = _last_checkpoint(checkpoints) if options.resume else None
    if options.resume and not resume_from:
        log("no checkpoint to resume from: starting from the beginning")
    if not resume_from:
        (workspace.adapter_dir / "train_log.jsonl").unlink(missing_ok=True)
    result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(result.metrics)
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    _save_adapter(trainer, trainer.processing_class, workspace.adapter_dir)
    summary = {
        "base": options.base or DEFAULT_BASE,
        "base_path": base_path,
        "quant": quant,
        "steps": trainer.state.global_step,
        "train_loss": metrics.get("train_loss"),
        "eval_loss": metrics.get("eval_loss"),
    }
    workspace.update_settings("train", summary)
    return summary


def build_trainer(workspace: Workspace, options: TrainOptions, log=print):
    """The configured ``SFTTrainer`` (LoRA attached, data tokenized and masked), its base
    model path and the chosen quantization."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from .progress import JsonlLogCallback  # imports transformers: kept out of `twin --help`

    train_data = _load_split(workspace, "train")
    valid_data = _load_split(workspace, "valid")
    base_path = resolve_base(options.base, log=log)
    cuda = torch.cuda.is_available()
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_path)
    except OSError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"cannot load base model {options.base or base_path!r}: {first_line}") from None
    added_pad = prepare_tokenizer(tokenizer)

    n_params = _count_params(base_path)
    quant = choose_quant(options.quant, cuda, n_params)
    if options.quant == "auto":
        log(f"quantization: {quant} ({'GPU' if cuda else 'CPU'}, "
            f"{n_params / 1e6:,.1f}M parameters)" if n_params else f"quantization: {quant}")
    compute_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        base_path, dtype=compute_dtype, quantization_config=quantization_config(quant, compute_dtype),
        device_map={"": 0} if cuda and quant != "none" else None,
    )
    if added_pad:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    checkpoints = workspace.adapter_dir / "checkpoints"
    config = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=options.epochs,
        max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,  # a float below 1 is a fraction of the run
        logging_steps=5,
        save_steps=options.save_steps,
        save_total_limit=2,
        eval_strategy="epoch" if valid_data is not None and options.max_steps < 0 else "no",
        max_length=options.max_length,
        completion_only_loss=True,
        # Batches of similar lengths waste less compute on padding (2x tokens/s in bench_train) but,
        # measured on the sample, learned less in a short run (80 steps: eval loss 2.07 vs 1.87): opt-in.
        train_sampling_strategy="group_by_length" if options.group_by_length else "random",
        # Small models fit in memory without it, and recomputing activations costs ~30% speed.
        gradient_checkpointing=quant != "none",
        bf16=compute_dtype == torch.bfloat16,
        use_cpu=not cuda,
        report_to="none",
        seed=options.seed,
        dataloader_num_workers=0,
    )
    lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_data, eval_dataset=valid_data,
                         processing_class=tokenizer, peft_config=lora,
                         callbacks=[JsonlLogCallback(workspace.adapter_dir / "train_log.jsonl")])
    return trainer, base_path, quant


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


def _save_adapter(trainer, tokenizer, adapter_dir: Path) -> None:
    """Save adapter + tokenizer into a temp dir, then move the files in (never half-written)."""
    adapter_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=adapter_dir, prefix=".saving-"))
    try:
        trainer.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        # adapter_config.json last: its presence marks a complete adapter.
        for name in sorted(names, key=lambda n: n == "adapter_config.json"):
            os.replace(tmp / name, adapter_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

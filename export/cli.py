"""The ``twin export`` command: options in, ``export.pipeline.run_export`` does the work.

Defaults come from ``export.pipeline.ExportOptions``; twin's errors become one line and an
exit code (2 for what the user can fix) through ``core.errors.cli_errors``.
"""
from __future__ import annotations

from pathlib import Path

import click

from core.errors import cli_errors
from core.workspace import Workspace
from export.pipeline import (AUTO_LARGE_QUANT, AUTO_LIMIT_PARAMS, AUTO_SMALL_QUANT, VERIFY_MODES, ExportOptions,
                             run_export)
from export.quantize import QUANT_NAMES

_DEFAULTS = ExportOptions()


def _check_quant(ctx: click.Context, param: click.Parameter, value: str) -> str:
    name = value.strip().upper()
    if name != "AUTO" and name not in QUANT_NAMES:
        raise click.BadParameter(f"{value!r} is not a known GGUF type; choose one of "
                                 f"auto, {', '.join(QUANT_NAMES)}")
    return name


@click.command("export")
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace directory with a trained adapter (from `twin train`).")
@click.option("--quant", default=_DEFAULTS.quant, show_default=True, callback=_check_quant,
              metavar="[auto|F16|BF16|Q8_0|Q6_K|Q5_K_M|Q4_K_M|...]",
              help=f"GGUF type. auto: {AUTO_SMALL_QUANT} below {AUTO_LIMIT_PARAMS / 1e9:g}B parameters, "
                   f"else {AUTO_LARGE_QUANT}. F16/BF16/F32/Q8_0 are written directly; the others "
                   "come from llama.cpp's quantizer (through a temporary F16 GGUF on disk).")
@click.option("--base", type=click.Path(exists=True, file_okay=False, path_type=Path), default=_DEFAULTS.base,
              help="Base model directory (default: the one `twin train` recorded, found by its fingerprint).")
@click.option("--verify", "verify", type=click.Choice(VERIFY_MODES), default=_DEFAULTS.verify, show_default=True,
              help="Parity check before the GGUF is kept. full: llama.cpp against transformers on a few "
                   "prompts (transformers runs the merged model one layer at a time, so the check's memory "
                   "is about the GGUF's size plus one layer; CPU time about reading the model once more). "
                   "quick, for big models: the quantized GGUF against an F16 GGUF in llama.cpp only, no "
                   "transformers (memory and temporary disk: the F16 file, the model's 16-bit size). "
                   "off: no check.")
@click.option("--skip-verify", is_flag=True, hidden=True, help="Same as --verify off.")
@click.option("--keep-merged", is_flag=True, default=_DEFAULTS.keep_merged,
              help="Also write the merged Hugging Face model to model/hf (base dtype, sharded).")
@click.option("--also-lora", is_flag=True, default=_DEFAULTS.also_lora,
              help="Also write the adapter alone as a llama.cpp LoRA, model/twin-lora-F16.gguf "
                   "(for llama.cpp's --lora on a GGUF of the base model).")
@click.option("--lora-only", is_flag=True, default=_DEFAULTS.lora_only,
              help="Write only model/twin-lora-F16.gguf: no full GGUF.")
def export_command(workspace: Path, quant: str, base: Path | None, verify: str, skip_verify: bool,
                   keep_merged: bool, also_lora: bool, lora_only: bool) -> None:
    """Merge the adapter and export WORKSPACE/model/twin-<QUANT>.gguf for llama.cpp / Ollama.

    The adapter is merged into the base tensor by tensor while the GGUF is written (memory:
    about one tensor, never the whole model); nothing but the GGUF and the Modelfile is left
    in WORKSPACE/model unless asked.
    """
    if lora_only and also_lora:
        raise click.UsageError("--lora-only and --also-lora exclude each other (--lora-only writes just the LoRA)")
    options = ExportOptions(quant=quant, base=base, verify="off" if skip_verify else verify,
                            also_lora=also_lora, lora_only=lora_only, keep_merged=keep_merged)
    with cli_errors("interrupted: nothing half-written was kept; rerun the export"):
        run_export(Workspace(workspace), options, log=click.echo)

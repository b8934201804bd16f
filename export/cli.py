"""The ``twin export`` command: WORKSPACE/adapter -> WORKSPACE/model/{hf/, twin-<QUANT>.gguf, Modelfile}.

Steps, each printed as it runs: merge the adapter into its full-precision base
(``model/hf/``), write the GGUF (directly for F32/F16/BF16/Q8_0; F16 then llama.cpp's
quantizer for K-quants and the rest), check llama.cpp's logits against transformers', and
write the Ollama Modelfile. The GGUF is written and verified under a temporary name and only
then renamed to ``twin-<QUANT>.gguf``: a failed or interrupted export leaves no partial or
unverified model behind. Expected failures are one-line messages (click.ClickException).

``--also-lora`` adds ``model/twin-lora-F16.gguf``, the adapter alone as a llama.cpp LoRA
(``export.lora_gguf``); ``--lora-only`` writes just that, without merging. Either way it is
checked by running an F16 GGUF of the base with the adapter applied against the merged model
(or, with ``--lora-only``, the PEFT model) before it is kept.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from dataprocess.template import system_prompt

from core.terminator import DONE

from core.artifacts import gguf_model_name
from core.workspace import Workspace
from core.atomic import temp_sibling
from export.errors import ExportError
from export.gguf_writer import DIRECT_OUTTYPES, SUPPORTED_MODEL_TYPES
from export.quantize import QUANT_NAMES

# "auto": a model this small loses noticeably more at 4 bits than it saves in bytes
# (SmolLM2-135M: Q8_0 145 MB, ~90% top-1 agreement; Q4_K_M 106 MB, ~82%).
AUTO_SMALL_QUANT, AUTO_LARGE_QUANT, AUTO_LIMIT_PARAMS = "Q8_0", "Q4_K_M", 1_500_000_000


def gguf_name(quant: str) -> str:
    return f"twin-{quant.upper()}.gguf"


def _mb(path: Path) -> str:
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        size = path.stat().st_size
    return f"{size / 1e6:,.1f} MB"


def _count_params(hf_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    for path in hf_dir.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                n = 1
                for dim in f.get_slice(name).get_shape():
                    n *= dim
                total += n
    return total


class _Verifier:
    """Runs export.verify against one merged model, loading it once."""

    def __init__(self, hf_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.hf_dir = hf_dir
        self.tokenizer_checked = False  # the vocabulary is the same in every GGUF of one export
        self.tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        self.model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)

    def check(self, gguf_path: Path, quant: str, label: str) -> None:
        from export.verify import min_agreement, verify_gguf

        t0 = time.monotonic()
        result = verify_gguf(gguf_path, self.hf_dir, hf_model=self.model, hf_tokenizer=self.tokenizer,
                             check_tokenizer=not self.tokenizer_checked)
        self.tokenizer_checked = True
        need = min_agreement(quant)
        click.echo(f"      {label}: {result.summary()} ({time.monotonic() - t0:.1f} s)")
        if result.tokenizer_mismatches:
            click.echo("      warning: llama.cpp splits some text into different tokens than the HF "
                       "tokenizer; replies may differ slightly from transformers'", err=True)
        if result.agreement < need:
            raise ExportError(
                f"verification failed: {label} top-1 agreement {result.agreement:.1%} is below "
                f"the {need:.0%} expected; the GGUF was not kept (--skip-verify keeps it anyway)")


def _preflight(adapter_dir: Path, base: Path | None) -> None:
    """Fail fast, before the slow merge, on what the GGUF writer will refuse."""
    from export.merge import adapter_base

    base_path = Path(base) if base is not None else Path(adapter_base(adapter_dir))
    config_path = base_path / "config.json"
    if config_path.is_file():
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ExportError(f"unsupported architecture {model_type!r} (base {base_path}); "
                              f"GGUF export supports: {', '.join(SUPPORTED_MODEL_TYPES)}")


def _check_quant(ctx: click.Context, param: click.Parameter, value: str) -> str:
    name = value.strip().upper()
    if name != "AUTO" and name not in QUANT_NAMES:
        raise click.BadParameter(f"{value!r} is not a known GGUF type; choose one of "
                                 f"auto, {', '.join(QUANT_NAMES)}")
    return name


@click.command("export")
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace directory with a trained adapter (from `twin train`).")
@click.option("--quant", default="auto", show_default=True, callback=_check_quant,
              metavar="[auto|F16|BF16|Q8_0|Q6_K|Q5_K_M|Q4_K_M|...]",
              help=f"GGUF type. auto: {AUTO_SMALL_QUANT} below {AUTO_LIMIT_PARAMS / 1e9:g}B parameters, "
                   f"else {AUTO_LARGE_QUANT}. F16/BF16/F32/Q8_0 are written directly; the others "
                   "come from llama.cpp's quantizer.")
@click.option("--base", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Base model directory (default: the one recorded in the adapter config).")
@click.option("--skip-verify", is_flag=True,
              help="Do not compare the GGUF's outputs with the merged model's.")
@click.option("--also-lora", is_flag=True,
              help="Also write the adapter alone as a llama.cpp LoRA, model/twin-lora-F16.gguf "
                   "(for llama.cpp's --lora on a GGUF of the base model).")
@click.option("--lora-only", is_flag=True,
              help="Write only model/twin-lora-F16.gguf: no merged model, no full GGUF.")
def export_command(workspace: Path, quant: str, base: Path | None, skip_verify: bool,
                   also_lora: bool, lora_only: bool) -> None:
    """Merge the adapter and export WORKSPACE/model/twin-<QUANT>.gguf for llama.cpp / Ollama."""
    if lora_only and also_lora:
        raise click.UsageError("--lora-only and --also-lora exclude each other (--lora-only writes just the LoRA)")
    try:
        if lora_only:
            _run_lora_only(Workspace(workspace), base, skip_verify)
        else:
            _run_export(Workspace(workspace), quant, base, skip_verify, also_lora)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"export failed: {exc}") from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: nothing half-written was kept; rerun the export") from None


def _check_workspace(ws: Workspace, base: Path | None) -> Path:
    if not ws.root.is_dir():
        raise ExportError(f"workspace {ws.root} does not exist")
    adapter = ws.adapter_dir
    if not (adapter / "adapter_config.json").is_file():
        raise ExportError(f"no trained adapter in {adapter} (run `twin train --workspace {ws.root}` first)")
    _preflight(adapter, base)
    return adapter


def _base_dir(adapter: Path, base: Path | None) -> Path:
    from export.merge import adapter_base

    path = Path(base) if base is not None else Path(adapter_base(adapter))
    if not (path / "config.json").is_file():
        raise ExportError(f"base model directory {path} (from the adapter config) has no config.json; "
                          "pass --base")
    return path


def _write_lora(ws: Workspace, adapter: Path, base_dir: Path, verify_against) -> Path:
    """Write model/twin-lora-F16.gguf, checked (unless ``verify_against`` is None) by running
    an F16 GGUF of the base with it applied against ``verify_against(gguf, base_f16, lora)``."""
    from export.gguf_writer import write_gguf
    from export.lora_gguf import lora_gguf_name, write_lora_gguf

    final = ws.model_dir / lora_gguf_name("F16")
    staging = temp_sibling(final, ".gguf.staging")
    base_f16 = temp_sibling(final, ".base-F16.gguf.tmp")
    try:
        t0 = time.monotonic()
        write_lora_gguf(adapter, base_dir, staging, "F16", name=f"{gguf_model_name(ws.persona())} LoRA")
        click.echo(f"      {final.name}: {_mb(staging)} ({time.monotonic() - t0:.1f} s)")
        if verify_against is not None:
            write_gguf(base_dir, base_f16, "F16")
            verify_against(base_f16, staging)
        os.replace(staging, final)
    finally:
        for leftover in (staging, base_f16):
            if leftover.exists():
                leftover.unlink()
    return final


def _lora_hint(final: Path, base_dir: Path) -> None:
    click.echo(f"  llama.cpp: llama-cli -m <GGUF of {base_dir}> --lora {final}")
    click.echo("             (the adapter applies to the base model it was trained on, not to twin-*.gguf)")


def _run_lora_only(ws: Workspace, base: Path | None, skip_verify: bool) -> None:
    adapter = _check_workspace(ws, base)
    base_dir = _base_dir(adapter, base)
    ws.model_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"[1/2] writing the adapter in {adapter} as a llama.cpp LoRA...")

    def check(base_f16: Path, lora: Path) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from export.verify import verify_gguf

        click.echo("[2/2] comparing llama.cpp (base + LoRA) with transformers (base + adapter)...")
        t0 = time.monotonic()
        tokenizer = AutoTokenizer.from_pretrained(adapter)
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, str(adapter), torch_device="cpu").eval()
        result = verify_gguf(base_f16, base_dir, hf_model=model, hf_tokenizer=tokenizer,
                             lora_path=lora, check_tokenizer=False)
        _check_lora_result(result, time.monotonic() - t0)

    final = _write_lora(ws, adapter, base_dir, None if skip_verify else check)
    if skip_verify:
        click.echo("[2/2] verification skipped (--skip-verify)")
    click.echo(f"exported {final} ({_mb(final)})")
    _lora_hint(final, base_dir)


def _check_lora_result(result, seconds: float) -> None:
    from export.verify import min_agreement

    click.echo(f"      F16 base + LoRA: {result.summary()} ({seconds:.1f} s)")
    if result.agreement < min_agreement("F16"):
        raise ExportError(f"verification failed: the LoRA applied by llama.cpp agrees on only "
                          f"{result.agreement:.1%} of positions; the LoRA GGUF was not kept")


def _run_export(ws: Workspace, quant: str, base: Path | None, skip_verify: bool,
                also_lora: bool = False) -> None:
    from export.merge import merge_adapter

    adapter = _check_workspace(ws, base)

    model_dir = ws.model_dir
    hf_dir = model_dir / "hf"
    click.echo(f"[1/4] merging the adapter in {adapter} into its base model...")
    t0 = time.monotonic()
    merge_adapter(adapter, hf_dir, base_dir=base)
    click.echo(f"      merged model: {hf_dir} ({_mb(hf_dir)}, {time.monotonic() - t0:.1f} s)")

    if quant == "AUTO":
        n_params = _count_params(hf_dir)
        quant = AUTO_SMALL_QUANT if n_params < AUTO_LIMIT_PARAMS else AUTO_LARGE_QUANT
        click.echo(f"      --quant auto: {quant} for {n_params / 1e6:,.1f}M parameters")

    final = model_dir / gguf_name(quant)
    staging = temp_sibling(final, ".gguf.staging")
    f16_tmp: Path | None = None
    try:
        from export.gguf_writer import write_gguf

        name = gguf_model_name(ws.persona())
        t0 = time.monotonic()
        if quant in DIRECT_OUTTYPES:
            click.echo(f"[2/4] writing the {quant} GGUF...")
            write_gguf(hf_dir, staging, quant, name=name)
        else:
            from export.quantize import quantize_gguf

            f16_tmp = temp_sibling(final, ".F16.gguf.tmp")
            click.echo(f"[2/4] writing an F16 GGUF, then quantizing it to {quant} with llama.cpp...")
            write_gguf(hf_dir, f16_tmp, "F16", name=name)
            click.echo(f"      F16: {_mb(f16_tmp)} ({time.monotonic() - t0:.1f} s)")
            quantize_gguf(f16_tmp, staging, quant)
        click.echo(f"      {final.name}: {_mb(staging)} ({time.monotonic() - t0:.1f} s)")

        if skip_verify:
            click.echo("[3/4] verification skipped (--skip-verify)")
        else:
            click.echo("[3/4] comparing llama.cpp with transformers on a few prompts...")
            checker = _Verifier(hf_dir)
            if f16_tmp is not None:
                # Quantization blurs the comparison; the F16 it started from must match exactly,
                # which catches conversion mistakes that a loose threshold could let through.
                checker.check(f16_tmp, "F16", label="F16 (before quantizing)")
            checker.check(staging, quant, label=quant)
        if also_lora:
            click.echo("      and the adapter alone as a llama.cpp LoRA...")
            base_dir = _base_dir(adapter, base)

            def check(base_f16: Path, lora: Path) -> None:
                from export.verify import verify_gguf

                t0 = time.monotonic()
                result = verify_gguf(base_f16, hf_dir, hf_model=checker.model,
                                     hf_tokenizer=checker.tokenizer, lora_path=lora,
                                     check_tokenizer=False)
                _check_lora_result(result, time.monotonic() - t0)

            lora_final = _write_lora(ws, adapter, base_dir, None if skip_verify else check)
        os.replace(staging, final)
        os.utime(final)  # the newest twin-*.gguf is the model `twin serve --workspace` picks
    finally:
        for leftover in (staging, f16_tmp):
            if leftover is not None and leftover.exists():
                leftover.unlink()

    from transformers import AutoTokenizer

    from export.modelfile import write_modelfile

    click.echo("[4/4] writing the Ollama Modelfile...")
    modelfile = write_modelfile(model_dir / "Modelfile", final.name,
                                AutoTokenizer.from_pretrained(hf_dir), DONE,
                                system=system_prompt(ws.persona()))
    click.echo(f"exported {final} ({_mb(final)})")
    click.echo(f"  serve it:  twin serve --workspace {ws.root}")
    click.echo(f"  ollama:    cd {model_dir} && ollama create twin -f {modelfile.name}")
    if also_lora:
        _lora_hint(lora_final, _base_dir(adapter, base))

"""``run_export``: a workspace's adapter -> ``model/twin-<QUANT>.gguf`` + Modelfile, checked.

The steps, each reported through ``log``:

1. find the base model (``--base``, else the one ``twin train`` recorded in twin.toml, found
   by name and fingerprint, else the adapter config's path) and refuse, before any heavy
   work, an architecture or tokenizer that cannot be exported;
2. write the GGUF straight from the base's shards and the adapter, tensor by tensor
   (``export.gguf_writer`` over ``export.weights``): F32/F16/BF16/Q8_0 directly, other types
   from an F16 file through llama.cpp's quantizer (``export.quantize``);
3. check it (``export.verify``): ``full`` compares llama.cpp with transformers (the merged
   model in fp32, one layer's weights in memory at a time: ``export.reference``), then
   llama.cpp maps the GGUF (its file size); ``quick`` compares the quantized GGUF with an F16
   one in llama.cpp only (the F16 file's size in memory); ``off`` skips it;
4. rename the checked file into place and write the Ollama Modelfile (``voice.modelfile``).

The GGUF speaks as the twin in any llama.cpp front end (``voice.exported``): its chat
template has the twin's system line as default, and the decoding defaults are in the
standard ``general.sampling.*`` keys.

GGUFs are written and checked under temporary names: a failed or interrupted export leaves
no partial or unchecked model. Nothing else is left beside the GGUF but the Modelfile,
unless asked: ``keep_merged`` also writes the merged HF model (``model/hf``, base dtype,
sharded), ``also_lora`` / ``lora_only`` the adapter alone as a llama.cpp LoRA.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core import artifacts
from core.atomic import temp_sibling
from core.settings import Settings
from core.terminator import DONE
from core.workspace import Workspace
from export.errors import ExportError, ExportInputError

# "auto": a model this small loses noticeably more at 4 bits than it saves in bytes
# (SmolLM2-135M: Q8_0 145 MB, ~90% top-1 agreement; Q4_K_M 106 MB, ~82%).
AUTO_SMALL_QUANT, AUTO_LARGE_QUANT, AUTO_LIMIT_PARAMS = "Q8_0", "Q4_K_M", 1_500_000_000
VERIFY_MODES = ("full", "quick", "off")
LORA_TYPE = "F16"


@dataclass
class ExportOptions:
    quant: str = "auto"                 # auto or a GGUF type (export.quantize.QUANT_NAMES)
    base: Path | None = None            # base model directory; default: the one trained on
    verify: str = "full"                # full | quick | off
    also_lora: bool = False             # also model/twin-lora-F16.gguf
    lora_only: bool = False             # only model/twin-lora-F16.gguf
    keep_merged: bool = False           # also model/hf, the merged HF model


@dataclass
class ExportResult:
    model_gguf: Path | None = None
    lora_gguf: Path | None = None
    modelfile: Path | None = None
    merged_dir: Path | None = None
    quant: str | None = None
    base_dir: Path | None = None
    checks: dict[str, object] = field(default_factory=dict)   # label -> export.verify.VerifyResult


def _mb(path: Path) -> str:
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return f"{size / 1e6:,.1f} MB"


def resolve_base_dir(ws: Workspace, base: Path | None, log: Callable[[str], None] = print) -> Path:
    """The local directory of the base model the adapter was trained on (found as every stage
    finds it: ``trainer.base_model.workspace_base``); a hub id is fetched into the hub's cache."""
    from trainer.base_model import workspace_base

    return _local_dir(workspace_base(ws, str(base) if base is not None else None, log=log))


def _local_dir(found: str) -> Path:
    """``found`` as a local directory: a hub id is fetched into the hub's cache (from there
    when already cached), as transformers would for `twin train`."""
    if Path(found).is_dir():
        return Path(found)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(found, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt",
                                                             "*.jinja"]))
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no access: one line
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportInputError(f"the base model {found} is not on this machine and cannot be fetched "
                               f"({detail}): pass its directory with --base") from None


def _metadata(settings: Settings, adapter_dir: Path, data_dir: Path | None = None) -> dict[str, object]:
    """The GGUF's own keys beside the model's: what `twin serve --model FILE.gguf` needs without
    the workspace (persona, data rules, the memory: knowledge base and contact groups), the adapter it was exported from (``twin eval`` measures
    this file only while it still matches the adapter), and the decoding defaults, as the
    standard ``general.sampling.*`` keys and twin's complete copy (``voice.exported``)."""
    from core.base_ref import adapter_fingerprint
    from dataprocess.memory import Memory
    from voice.exported import sampling_metadata

    return {
        artifacts.GGUF_KEY_PERSONA: settings.persona.name,
        artifacts.GGUF_KEY_RULES: json.dumps(settings.data.to_dict()),
        artifacts.GGUF_KEY_MEMORY: (Memory.load(data_dir) if data_dir else Memory()).to_json(),
        artifacts.GGUF_KEY_ADAPTER: adapter_fingerprint(adapter_dir),
        **sampling_metadata(settings.sampling),
    }


def _write_modelfile(path: Path, gguf_name: str, tokenizer, settings: Settings) -> Path:
    """The Ollama Modelfile, from the same values as the GGUF (``voice.modelfile``)."""
    from dataprocess.template import system_prompt
    from voice.decoding import Decoding
    from voice.hf import TokenizerVoice
    from voice.modelfile import bias_note, parameters, write_modelfile

    biases = Decoding.from_sampling(settings.sampling).biases(TokenizerVoice.of(tokenizer).style_tokens)
    return write_modelfile(path, gguf_name, tokenizer, DONE, system=system_prompt(settings.persona.name),
                           parameters=parameters(settings.sampling), notes=bias_note(settings.sampling, biases))


class _Checker:
    """Runs the parity checks of one export against one reference (see the module docstring)."""

    def __init__(self, mode: str, tokenizer, log: Callable[[str], None]):
        from export.verify import prompt_ids

        self.mode, self.tokenizer, self.log = mode, tokenizer, log
        self.batches = prompt_ids(tokenizer)
        self.reference = None
        self.tokenizer_checked = False
        self.results: dict[str, object] = {}

    def reference_from_transformers(self, source) -> None:
        from export.reference import streamed_logits

        t0 = time.monotonic()
        self.reference = streamed_logits(source, self.batches)
        gc.collect()  # before llama.cpp maps the GGUF
        self.log(f"      transformers reference: {sum(len(b) for b in self.batches)} positions "
                 f"({time.monotonic() - t0:.1f} s)")

    def reference_from_gguf(self, gguf_path: Path) -> None:
        from export.verify import gguf_logits

        self.reference, mismatches = gguf_logits(gguf_path, self.batches, tokenizer=self.tokenizer)
        self._report_tokenizer(mismatches)

    def _report_tokenizer(self, mismatches) -> None:
        if mismatches is None:
            return
        self.tokenizer_checked = True
        if mismatches:
            self.log("      warning: llama.cpp splits some text into different tokens than the HF "
                     "tokenizer; replies may differ slightly from transformers'")

    def check(self, gguf_path: Path, quant: str, label: str, lora: Path | None = None) -> None:
        from export.verify import compare_logits, gguf_logits, min_agreement

        t0 = time.monotonic()
        got, mismatches = gguf_logits(gguf_path, self.batches, lora_path=lora,
                                      tokenizer=None if self.tokenizer_checked else self.tokenizer)
        self._report_tokenizer(mismatches)
        result = compare_logits(self.reference, got, tokenizer_mismatches=mismatches)
        self.results[label] = result
        self.log(f"      {label}: {result.summary()} ({time.monotonic() - t0:.1f} s)")
        if result.agreement < min_agreement(quant):
            what = "the LoRA applied by llama.cpp" if lora is not None else label
            raise ExportError(
                f"verification failed: {what} top-1 agreement {result.agreement:.1%} is below the "
                f"{min_agreement(quant):.0%} expected; the GGUF was not kept (--verify off keeps it anyway)")


def run_export(workspace: Workspace, options: ExportOptions | None = None,
               log: Callable[[str], None] = print) -> ExportResult:
    """Export the workspace's adapter as ``model/twin-<QUANT>.gguf`` (see the module docstring)."""
    from export.quantize import QUANT_NAMES

    options = options or ExportOptions()
    quant = options.quant.strip().upper()
    if quant != "AUTO" and quant not in QUANT_NAMES:
        raise ExportInputError(f"{options.quant!r} is not a known GGUF type; choose one of auto, {', '.join(QUANT_NAMES)}")
    if options.verify not in VERIFY_MODES:
        raise ExportInputError(f"verify mode {options.verify!r}: one of {', '.join(VERIFY_MODES)}")
    if options.lora_only and (options.also_lora or options.keep_merged):
        raise ExportInputError("--lora-only writes just the LoRA: it excludes --also-lora and --keep-merged")
    adapter_dir = workspace.require_adapter()
    settings = workspace.settings()
    base_dir = resolve_base_dir(workspace, options.base, log)
    try:
        if options.lora_only:
            return _lora_only(workspace, adapter_dir, base_dir, settings, options, log)
        return _export(workspace, adapter_dir, base_dir, settings, options, quant, log)
    except OSError as exc:
        raise ExportError(f"export failed: {exc}") from None


def _write_lora(ws: Workspace, adapter_dir: Path, base_dir: Path, settings: Settings, staging: Path,
                log) -> None:
    from export.lora_gguf import write_lora_gguf

    t0 = time.monotonic()
    write_lora_gguf(adapter_dir, base_dir, staging, LORA_TYPE,
                    name=f"{artifacts.gguf_model_name(settings.persona.name)} LoRA")
    log(f"      {artifacts.lora_gguf_name(LORA_TYPE)}: {_mb(staging)} ({time.monotonic() - t0:.1f} s)")


def _lora_hint(final: Path, base_dir: Path, log) -> None:
    log(f"  llama.cpp: llama-cli -m <GGUF of {base_dir}> --lora {final}")
    log("             (the adapter applies to the base model it was trained on, not to twin-*.gguf)")


def _lora_only(ws, adapter_dir, base_dir, settings, options, log) -> ExportResult:
    from transformers import AutoTokenizer

    from export.gguf_writer import write_gguf
    from export.weights import ModelSource

    base = ModelSource(base_dir)  # refuses an unsupported architecture before anything is written
    ws.model_dir.mkdir(parents=True, exist_ok=True)
    final = ws.lora_gguf(LORA_TYPE)
    staging = temp_sibling(final, ".gguf.staging")
    base_f16 = temp_sibling(final, ".base-F16.gguf.tmp")
    result = ExportResult(base_dir=base_dir)
    try:
        log(f"[1/2] writing the adapter in {adapter_dir} as a llama.cpp LoRA...")
        _write_lora(ws, adapter_dir, base_dir, settings, staging, log)
        if options.verify == "off":
            log("[2/2] verification skipped (--verify off)")
        else:  # "quick" has no cheaper reference here: the adapter is checked against transformers
            log("[2/2] comparing llama.cpp (base + LoRA) with transformers (base + adapter)...")
            write_gguf(base, base_f16, "F16")
            checker = _Checker(options.verify, AutoTokenizer.from_pretrained(adapter_dir), log)
            checker.tokenizer_checked = True
            checker.reference_from_transformers(ModelSource(base_dir, adapter_dir))
            checker.check(base_f16, "F16", "F16 base + LoRA", lora=staging)
            result.checks = checker.results
        os.replace(staging, final)
    finally:
        for leftover in (staging, base_f16):
            leftover.unlink(missing_ok=True)
    result.lora_gguf = final
    log(f"exported {final} ({_mb(final)})")
    _lora_hint(final, base_dir, log)
    return result


def _export(ws, adapter_dir, base_dir, settings, options, quant, log) -> ExportResult:
    from transformers import AutoTokenizer

    from dataprocess.template import system_prompt
    from export.gguf_writer import DIRECT_OUTTYPES, write_gguf
    from export.weights import ModelSource

    source = ModelSource(base_dir, adapter_dir)  # refuses what cannot be exported, before writing
    tokenizer = AutoTokenizer.from_pretrained(source.tokenizer_dir)
    result = ExportResult(base_dir=base_dir)
    n_steps = 3 + int(options.keep_merged)
    if quant == "AUTO":
        n_params = source.n_params()
        quant = AUTO_SMALL_QUANT if n_params < AUTO_LIMIT_PARAMS else AUTO_LARGE_QUANT
        log(f"      --quant auto: {quant} for {n_params / 1e6:,.1f}M parameters")
    result.quant = quant
    model_dir = ws.model_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    final = ws.model_gguf(quant)
    staging = temp_sibling(final, ".gguf.staging")
    f16_tmp = temp_sibling(final, ".F16.gguf.tmp")
    lora_staging = temp_sibling(ws.lora_gguf(LORA_TYPE), ".gguf.staging")
    base_f16 = temp_sibling(final, ".base-F16.gguf.tmp")
    name = artifacts.gguf_model_name(settings.persona.name)
    metadata = _metadata(settings, adapter_dir, ws.data_dir)
    system = system_prompt(settings.persona.name)  # the chat template's default system line
    try:
        t0 = time.monotonic()
        if quant in DIRECT_OUTTYPES:
            log(f"[1/{n_steps}] merging the adapter into {base_dir.name} and writing the {quant} GGUF, "
                "tensor by tensor...")
            write_gguf(source, staging, quant, name=name, metadata=metadata, system=system)
        else:
            from export.quantize import quantize_gguf

            log(f"[1/{n_steps}] merging the adapter into {base_dir.name} and writing an F16 GGUF, "
                f"then quantizing it to {quant} with llama.cpp...")
            write_gguf(source, f16_tmp, "F16", name=name, metadata=metadata, system=system)
            log(f"      F16: {_mb(f16_tmp)} ({time.monotonic() - t0:.1f} s)")
            quantize_gguf(f16_tmp, staging, quant)
        log(f"      {final.name}: {_mb(staging)} ({time.monotonic() - t0:.1f} s)")
        if options.also_lora:
            log("      and the adapter alone as a llama.cpp LoRA...")
            _write_lora(ws, adapter_dir, base_dir, settings, lora_staging, log)

        if options.verify == "off":
            log(f"[2/{n_steps}] verification skipped (--verify off)")
        else:
            checker = _Checker(options.verify, tokenizer, log)
            if options.verify == "full":
                log(f"[2/{n_steps}] comparing llama.cpp with transformers on a few prompts...")
                checker.reference_from_transformers(source)
                if f16_tmp.exists():
                    # Quantization blurs the comparison; the F16 it started from must match
                    # exactly, which catches conversion mistakes a loose threshold could let through.
                    checker.check(f16_tmp, "F16", "F16 (before quantizing)")
                checker.check(staging, quant, quant)
            else:
                log(f"[2/{n_steps}] comparing the {quant} GGUF with the F16 GGUF in llama.cpp (--verify quick)...")
                if quant in ("F16", "BF16", "F32"):
                    reference = staging
                else:
                    if not f16_tmp.exists():
                        write_gguf(source, f16_tmp, "F16", name=name, metadata=metadata, system=system)
                    reference = f16_tmp
                checker.reference_from_gguf(reference)
                if reference != staging:
                    checker.check(staging, quant, f"{quant} vs F16")
                else:
                    log(f"      {quant}: loads in llama.cpp (no cheaper reference for a 16-bit export)")
            if options.also_lora:
                write_gguf(ModelSource(base_dir), base_f16, "F16")
                checker.check(base_f16, "F16", "F16 base + LoRA", lora=lora_staging)
            result.checks = checker.results
        f16_tmp.unlink(missing_ok=True)  # before the merged copy: the disk holds one big temp at a time
        if options.also_lora:
            os.replace(lora_staging, ws.lora_gguf(LORA_TYPE))
            result.lora_gguf = ws.lora_gguf(LORA_TYPE)
        os.replace(staging, final)
        os.utime(final)  # the newest model GGUF is the one `twin serve --workspace` picks
    finally:
        for leftover in (staging, f16_tmp, lora_staging, base_f16):
            leftover.unlink(missing_ok=True)
    result.model_gguf = final

    step = 3
    if options.keep_merged:
        from export.merge import merge_adapter

        log(f"[{step}/{n_steps}] writing the merged model (base dtype, sharded) to {ws.merged_dir}...")
        t0 = time.monotonic()
        result.merged_dir = merge_adapter(adapter_dir, ws.merged_dir, source=source)
        log(f"      {ws.merged_dir}: {_mb(ws.merged_dir)} ({time.monotonic() - t0:.1f} s)")
        step += 1
    elif ws.merged_dir.is_dir():
        shutil.rmtree(ws.merged_dir)  # an earlier export's copy no longer matches this GGUF
        log(f"      removed {ws.merged_dir} from an earlier export (--keep-merged writes a new one)")

    log(f"[{step}/{n_steps}] writing the Ollama Modelfile...")
    result.modelfile = _write_modelfile(model_dir / artifacts.MODELFILE, final.name, tokenizer, settings)
    log(f"exported {final} ({_mb(final)})")
    log(f"  serve it:  twin serve --workspace {ws.root}")
    log(f"  ollama:    cd {model_dir} && ollama create twin -f {artifacts.MODELFILE}")
    if result.lora_gguf is not None:
        _lora_hint(result.lora_gguf, base_dir, log)
    return result

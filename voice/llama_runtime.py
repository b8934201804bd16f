"""Opening GGUF files with llama-cpp-python, with a guard against a known CPU crash.

llama.cpp's CPU backend places quantized weights in "extra" buffer types (AMX tiles on
Intel CPUs that report AMX, repacked layouts on others). On the 2-core VMs used here the
AMX path crashes the process (SIGSEGV in ``ggml_backend_amx_mul_mat``) on the first batch
of more than one token for any quantized model (Q8_0, Q4_K_M, even SmolLM2's own Q4_1).
``open_llama`` turns those buffer types off when the CPU reports AMX (``llama_model_params
.use_extra_bufts``, which ``llama_cpp.Llama`` does not expose) so verification and chat work
everywhere; elsewhere llama.cpp's defaults are kept. ``TWIN_LLAMA_EXTRA_BUFFERS=0|1``
overrides the choice. ``default_threads`` picks a thread count that stays fast on a small,
busy machine.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path
from typing import Any, Iterator

_PATCH_LOCK = threading.Lock()


def default_threads() -> int:
    """Threads for llama.cpp: about one per physical core (half the logical CPUs).

    llama.cpp's threads spin while they wait for each other, so on a small machine that is
    also busy with something else every extra thread costs more than it brings. (On the
    2-core VMs here, with a training run beside it, SmolLM2 Q8_0 generated 13.6 tok/s with
    1 thread and 1.0 tok/s with 2; with OMP_WAIT_POLICY=PASSIVE in the environment before
    torch / llama_cpp load, 44 tok/s either way.)
    """
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@functools.lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(line.startswith("flags") and "amx_tile" in line for line in f)
    except OSError:
        return False


def extra_buffers_default() -> bool:
    """Whether llama.cpp may use its extra (AMX / repacked) weight buffers here."""
    env = os.environ.get("TWIN_LLAMA_EXTRA_BUFFERS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return not cpu_has_amx()


@contextlib.contextmanager
def _model_params_override(**fields: Any) -> Iterator[None]:
    """Make ``llama_cpp.Llama`` build its model params with ``fields`` set."""
    import llama_cpp.llama as llama_module

    low = llama_module.llama_cpp  # the ctypes bindings module Llama reads its defaults from
    with _PATCH_LOCK:
        original = low.llama_model_default_params

        def patched():
            params = original()
            for key, value in fields.items():
                setattr(params, key, value)
            return params

        low.llama_model_default_params = patched
        try:
            yield
        finally:
            low.llama_model_default_params = original


def open_llama(model_path: Path | str, *, extra_buffers: bool | None = None, **kwargs: Any):
    """``llama_cpp.Llama(model_path, **kwargs)``, with extra weight buffers off where they crash."""
    import llama_cpp

    if extra_buffers is None:
        extra_buffers = extra_buffers_default()
    kwargs.setdefault("verbose", False)
    if extra_buffers:
        return llama_cpp.Llama(model_path=str(model_path), **kwargs)
    with _model_params_override(use_extra_bufts=False):
        return llama_cpp.Llama(model_path=str(model_path), **kwargs)

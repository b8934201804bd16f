"""The twin's voice written into the exported model, so any llama.cpp front end speaks as the twin.

A GGUF opened in llama-server, LM Studio, Ollama or llama-cpp-python's chat API knows nothing
of twin; what it reads is the file's own metadata. Three things make it speak as the twin:

- the chat template (:func:`twin_chat_template`): the base model's own template, with the
  twin's system line (``dataprocess.template.system_prompt``) put first when a conversation
  brings no system message of its own, in place of the base model's default ("You are a
  helpful AI assistant named SmolLM"); a conversation that has one renders exactly as before,
  so twin's own prompts (which always have it) and training are unchanged;
- the end of a reply: the twin is trained to end with the template's end-of-turn token
  (``core.terminator``), which every front end stops at and hides: nothing here is needed;
- the decoding defaults as the standard ``general.sampling.*`` keys llama.cpp reads
  (:func:`sampling_keys`: temperature, top-k, top-p, min-p, the repeat penalty and its window,
  and the sampler order), next to twin's own complete copy (``core.artifacts.GGUF_KEY_SAMPLING``,
  with the fitted biases and the presence/frequency penalties, which have no standard key).

``twin export`` writes these (``export.pipeline``); :func:`refresh_sampling` rewrites an
exported GGUF's decoding keys when ``twin eval`` has chosen new defaults, with gguf-py's own
metadata copier (what its ``gguf-new-metadata`` tool does), so the file need not be exported
again. The Ollama Modelfile beside it is written from the same values (``voice.modelfile``).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from core.artifacts import GGUF_KEY_SAMPLING
from core.atomic import atomic_file
from core.settings import Sampling

from .decoding import LLAMA_SAMPLER_SEQUENCE, Decoding


def _literal(text: str) -> str:
    """``text`` as a Jinja string literal (JSON's escapes are Jinja's and minja's too)."""
    return json.dumps(text, ensure_ascii=False)


def _with_default_system(template: str, system: str) -> str:
    head = ("{%- if not messages or messages[0]['role'] != 'system' -%}"
            "{%- set messages = [{'role': 'system', 'content': " + _literal(system) + "}] + messages -%}"
            "{%- endif -%}")
    return head + template


def twin_chat_template(template: str | list[dict[str, str]] | None, system: str):
    """The base's chat template with ``system`` as the system line of a conversation that has
    none (a list of named templates: the default one). None stays None."""
    if isinstance(template, str):
        return _with_default_system(template, system)
    if isinstance(template, list):
        return [dict(t, template=_with_default_system(t["template"], system)) if t.get("name") == "default" else t
                for t in template]
    return template


def sampling_keys(sampling: Sampling) -> dict[str, Any]:
    """The ``general.sampling.*`` keys (gguf-py's ``Keys.General.SAMPLING_*``) for the twin's
    decoding defaults, with their values."""
    import gguf

    d = Decoding.from_sampling(sampling)
    keys = gguf.Keys.General
    return {keys.SAMPLING_SEQUENCE: LLAMA_SAMPLER_SEQUENCE, keys.SAMPLING_TEMP: float(d.temperature),
            keys.SAMPLING_TOP_K: int(d.top_k), keys.SAMPLING_TOP_P: float(d.top_p),
            keys.SAMPLING_MIN_P: float(d.min_p), keys.SAMPLING_PENALTY_REPEAT: float(d.repeat_penalty),
            keys.SAMPLING_PENALTY_LAST_N: int(d.penalty_last_n)}


def gguf_value_type(value: Any):
    """The GGUF type a metadata value is written as: string, int32 or float32."""
    import gguf

    if isinstance(value, str):
        return gguf.GGUFValueType.STRING
    return gguf.GGUFValueType.INT32 if isinstance(value, int) else gguf.GGUFValueType.FLOAT32


def sampling_metadata(sampling: Sampling) -> dict[str, Any]:
    """Every GGUF key that holds the decoding defaults: the standard ones and twin's own."""
    return {**sampling_keys(sampling), GGUF_KEY_SAMPLING: json.dumps(dataclasses.asdict(sampling))}


def read_sampling_keys(metadata: dict[str, Any]) -> dict[str, Any]:
    """The ``general.sampling.*`` values found in a GGUF's metadata (llama-cpp-python's
    ``Llama.metadata`` gives strings: numbers are parsed back)."""
    import gguf

    out = {}
    for key in sampling_keys(Sampling()):
        if key in metadata:
            value = metadata[key]
            if key != gguf.Keys.General.SAMPLING_SEQUENCE and isinstance(value, str):
                value = float(value) if any(c in value for c in ".eE") else int(value)
            out[key] = value
    return out


def sampling_from_metadata(metadata) -> Sampling:
    """The decoding defaults stored in a GGUF's metadata (twin's own key; Sampling's defaults
    when absent or unreadable): what `twin serve --model FILE.gguf` decodes with."""
    from core.settings import section_from_metadata

    return section_from_metadata(Sampling, metadata, GGUF_KEY_SAMPLING)


def refresh_sampling(gguf_path: Path | str, sampling: Sampling) -> bool:
    """Rewrite an exported GGUF's decoding keys to ``sampling`` (atomically: a copy with the new
    metadata replaces the file). Returns False, touching nothing, when they already say so."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    gguf_path = Path(gguf_path)
    reader = gguf.GGUFReader(str(gguf_path))
    wanted = sampling_metadata(sampling)
    current = {key: reader.get_field(key).contents() for key in wanted if reader.get_field(key) is not None}
    if all(key in current and _same(current[key], value) for key, value in wanted.items()):
        return False
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    new = {key: MetadataDetails(gguf_value_type(value), value) for key, value in wanted.items()}
    stat = gguf_path.stat()
    with atomic_file(gguf_path, suffix=".gguf.tmp") as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch=arch, endianess=reader.endianess)
        copy_with_new_metadata(reader, writer, new, [])
    del reader  # the old file's memory map
    import os

    os.utime(gguf_path, (stat.st_atime, stat.st_mtime))  # still the same export: its age is kept
    return True


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, float) and isinstance(a, (int, float)):
        return abs(float(a) - b) <= 1e-6 * max(1.0, abs(b))
    return a == b

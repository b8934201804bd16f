"""``twin.toml`` as typed dataclasses: every stage reads and writes its settings through these.

::

    [persona]   name, facts                          written by `twin process`
    [data]      the data rules (Rules)               written by `twin process`, read by serve
    [train]     base model (name + fingerprint), quantization, steps, losses   written by train
    [sampling]  decoding defaults (Sampling)         read by serve, chat, eval and the Modelfile
    [timing]    the person's reply timing (Timing)   written by `twin process`, read by `twin bot`

The defaults of each field are the defaults of the matching command-line option: the click
options take them from here. A file written by an older or newer twin still reads: unknown
keys are ignored and missing ones take their defaults; a value of the wrong type is an
:class:`~core.errors.InputError` naming the key. No absolute path of this machine is stored,
so a workspace copied to another machine (train on a rented GPU, serve on a laptop) works.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

import tomli_w

from .atomic import write_atomic
from .errors import InputError

DEFAULT_PERSONA = "me"
# How long one generation may take before the server gives up on it.
REQUEST_TIMEOUT_S = 120.0


@dataclass
class Persona:
    name: str = DEFAULT_PERSONA
    facts: str | None = None           # the facts file as given to `twin process` (informational)


@dataclass
class Rules:
    """Every choice ``twin process`` makes about which messages become training examples,
    and how a live request is cleaned and cut to context before the twin hears it."""

    since: datetime = field(default_factory=lambda: datetime(2023, 1, 1))
    group_chats: bool = False          # one-on-one chats only unless asked
    top_contacts: int = 20             # keep the N most-messaged contacts (0 = all)
    lowercase: bool = True
    replace_urls: bool = True          # URL -> "link"
    strip_emoji: bool = True
    squash_repeats: bool = True        # oooooh -> oooh
    scrub_personal_data: bool = True   # emails, phones, cards, IBANs, accounts, addresses -> placeholders
    anonymize_contacts: bool = False   # contacts' names in their messages -> <contact>
    max_message_chars: int = 1000      # longer messages (pasted text, logs) are dropped (0 = no cap)
    reply_window_minutes: float = 30.0  # a reply counts only within this time
    session_gap_hours: float = 6.0     # a longer silence starts a new conversation
    context_turns: int = 4             # earlier turns of the conversation shown to the model
    context_chars: int = 600           # ...capped at this many characters
    max_reply_chars: int = 400         # longer replies are dropped
    facts_repeat: int = 3              # each fact question/answer repeated this often
    facts_per_prompt: int = 3          # knowledge-base facts retrieved into each prompt (0 = none)
    contact_in_prompt: bool = True     # the prompt says who the twin is texting (name or group)
    dedupe: bool = True
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["since"] = self.since.date().isoformat()
        data["split"] = list(self.split)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Rules":
        return _from_dict(cls, data, "data")


@dataclass
class TrainRecord:
    """What `twin train` made: the base model by name and content, not by a path here."""

    base: str = ""                     # embedded name, hub id, or the directory's name as given
    base_fingerprint: str = ""         # core.base_ref.fingerprint of the base's files
    quant: str = "none"
    steps: int = 0
    adapter_step: int = 0
    stopped_early: bool = False
    train_loss: float | None = None
    eval_loss: float | None = None


@dataclass
class Sampling:
    """The twin's decoding defaults as twin.toml keeps them. Every way of talking to the twin
    (eval, server, chat, bots, the exported GGUF and Modelfile) decodes through the one contract
    built from these: ``voice.decoding.Decoding`` (sampler order, first-token bans, retries)."""

    temperature: float = 0.7
    top_k: int = 40                    # llama.cpp's default (0: off)
    top_p: float = 1.0
    min_p: float = 0.05                # llama.cpp's default (0: off)
    max_tokens: int = 64               # the reply's token cap, the same in eval, training checks and serving
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_last_n: int = 64           # the penalties look at this many of the reply's last tokens
    # Logit biases (added to the raw logits at every step) that keep the twin's
    # replies at the person's length and `` | `` habit: ``end_bias`` on the end-of-turn token
    # (> 0: shorter replies), ``separator_bias`` on the message separator's token (> 0: more
    # messages per reply). Fitted by `twin eval` on the valid split (trainer.decoding_choice);
    # the tokens are found by core.terminator.StyleTokens.
    end_bias: float = 0.0
    separator_bias: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "Sampling":
        return _from_dict(cls, data, "sampling")


@dataclass
class Timing:
    """How the person times their messages, measured by `twin process` (dataprocess.timing) from
    their own chats and played back by `twin bot` (bot.timing). Each ``*_s`` field is a
    distribution in seconds: its quantiles at evenly spaced levels from 0 to 1 (empty: not
    measured). ``replies`` is how many replies were measured."""

    replies: int = 0
    reply_latency_s: tuple[float, ...] = ()   # the contact's last message -> my first of the reply
    burst_gap_s: tuple[float, ...] = ()       # between consecutive messages of one reply of mine
    contact_gap_s: tuple[float, ...] = ()     # between consecutive messages of a contact's burst
    contact_burst_s: tuple[float, ...] = ()   # a contact's first -> last message before I answer
    parts_per_reply: float = 0.0              # mean messages in one reply of mine
    typing_chars_per_s: float = 7.0           # fast end of my typing (the floor of a message's delay)

    @classmethod
    def from_dict(cls, data: dict) -> "Timing":
        return _from_dict(cls, data, "timing")


@dataclass
class Settings:
    persona: Persona = field(default_factory=Persona)
    data: Rules = field(default_factory=Rules)
    train: TrainRecord | None = None
    sampling: Sampling = field(default_factory=Sampling)
    timing: Timing | None = None       # written by `twin process` (older workspaces: none)
    # Sections another twin version wrote that this one does not know: kept, written back.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_toml(self) -> str:
        doc: dict[str, Any] = dict(self.extra)
        doc["persona"] = _drop_none(asdict(self.persona))
        doc["data"] = self.data.to_dict()
        if self.train is not None:
            doc["train"] = _drop_none(asdict(self.train))
        doc["sampling"] = asdict(self.sampling)
        if self.timing is not None:
            doc["timing"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.timing).items()}
        return tomli_w.dumps(doc)

    @classmethod
    def from_toml(cls, text: str, where: str = "twin.toml") -> "Settings":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{where} is not valid TOML: {exc}") from None
        known = {"persona", "data", "train", "sampling", "timing"}
        return cls(
            persona=_from_dict(Persona, doc.get("persona", {}), "persona", where),
            data=_from_dict(Rules, doc.get("data", {}), "data", where),
            train=_from_dict(TrainRecord, doc["train"], "train", where) if "train" in doc else None,
            sampling=_from_dict(Sampling, doc.get("sampling", {}), "sampling", where),
            timing=_from_dict(Timing, doc["timing"], "timing", where) if "timing" in doc else None,
            extra={k: v for k, v in doc.items() if k not in known},
        )

    @classmethod
    def load(cls, path: Path) -> "Settings":
        """The settings at ``path``; all defaults when the file does not exist yet."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        return cls.from_toml(text, str(path))

    def save(self, path: Path) -> None:
        write_atomic(path, self.to_toml())


def section_from_metadata(cls, metadata, key: str):
    """A settings section (``Rules``, ``Sampling``) stored as JSON text under ``key`` in a GGUF's
    metadata (``core.artifacts.GGUF_KEY_*``): what `twin serve --model FILE.gguf` uses without the
    workspace. The section's defaults when the key is absent or unreadable (with a warning)."""
    raw = metadata.get(key)
    if not raw:
        return cls()
    try:
        return _from_dict(cls, json.loads(raw), key, "the model's metadata")
    except (ValueError, TypeError) as exc:   # InputError is a ValueError
        logging.getLogger(__name__).warning("the model's %s metadata is unreadable (%s): using the defaults",
                                            key, exc)
        return cls()


def _drop_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _from_dict(cls, data: Any, section: str, where: str = "twin.toml"):
    """Build dataclass ``cls`` from a TOML table, checking each known key's type."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: [{section}] must be a table")
    defaults = cls()
    values = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        values[f.name] = _coerce(data[f.name], getattr(defaults, f.name), f"{where}: [{section}] {f.name}")
    return dataclasses.replace(defaults, **values)


def _coerce(value: Any, default: Any, what: str) -> Any:
    """``value`` as the type of ``default`` (None defaults accept numbers and strings)."""
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, datetime):
            if isinstance(value, datetime):
                return value
            if isinstance(value, date):
                return datetime(value.year, value.month, value.day)
            return datetime.fromisoformat(str(value))
        if isinstance(default, tuple):
            return tuple(float(v) for v in value)
        if isinstance(default, float) or (default is None and isinstance(value, (int, float))):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if isinstance(default, str) or default is None:
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise InputError(f"{what}: {json.dumps(value, default=str)} is not a valid value "
                     f"(expected {type(default).__name__ if default is not None else 'a value'})")

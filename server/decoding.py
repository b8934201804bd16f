"""How one reply is sampled: the twin's defaults with a request's changes (no Flask here).

The defaults are :class:`core.settings.Sampling`, read from ``twin.toml`` ``[sampling]`` or,
for a GGUF served alone, from its metadata key ``core.artifacts.GGUF_KEY_SAMPLING``
(:func:`sampling_from_metadata`). A request may change temperature, top-p, the penalties,
``max_tokens``, and add a ``seed`` and ``stop`` strings; every backend honours all of them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

from core.artifacts import GGUF_KEY_SAMPLING
from core.settings import Sampling, section_from_metadata


_DEFAULT = Sampling()
MAX_STOP_STRINGS = 4
EMPTY_REPLY_TRIES = 3  # a reply empty after cleaning is generated again, at most this often in all
RETRY_TEMPERATURE = _DEFAULT.temperature


@dataclass(frozen=True)
class Decoding:
    temperature: float = _DEFAULT.temperature
    top_p: float = _DEFAULT.top_p
    max_tokens: int = _DEFAULT.max_tokens
    repeat_penalty: float = _DEFAULT.repeat_penalty
    presence_penalty: float = _DEFAULT.presence_penalty
    frequency_penalty: float = _DEFAULT.frequency_penalty
    end_bias: float = _DEFAULT.end_bias              # the twin's fitted logit biases (twin.toml only;
    separator_bias: float = _DEFAULT.separator_bias  # a request cannot change them)
    seed: int | None = None          # None: a fresh seed per request
    stop: tuple[str, ...] = ()       # extra strings that end the reply (not shown)

    @classmethod
    def from_sampling(cls, sampling: Sampling) -> "Decoding":
        return cls(**{f.name: getattr(sampling, f.name) for f in dataclasses.fields(Sampling)
                      if f.name in {g.name for g in dataclasses.fields(cls)}})

    def with_changes(self, **changes) -> "Decoding":
        """A copy with the given fields replaced (``None`` values leave a field as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def retry(self, attempt: int) -> "Decoding":
        """The settings for the ``attempt``-th try of a reply: another seed each time, and a
        greedy request samples (at :data:`RETRY_TEMPERATURE`), since greedy would say the same."""
        if attempt == 0:
            return self
        return dataclasses.replace(self, seed=None if self.seed is None else (self.seed + attempt) & 0x7FFFFFFF,
                                   temperature=self.temperature if self.temperature > 0 else RETRY_TEMPERATURE)


def sampling_from_metadata(metadata: Mapping[str, str]) -> Sampling:
    """The decoding defaults stored in a GGUF's metadata (Sampling's own when absent or unreadable)."""
    return section_from_metadata(Sampling, metadata, GGUF_KEY_SAMPLING)

"""The decoding contract: how every runtime turns the model's logits into the twin's reply.

:class:`Decoding` is built from the persisted ``core.settings.Sampling`` (twin.toml
``[sampling]``, or the GGUF's metadata) plus a request's changes, and it alone says

- the token cap (``max_tokens``: the same in ``twin eval``, training's checks and serving);
- the sampler order and its constants (:data:`SAMPLER_ORDER`): logit biases, then llama.cpp's
  repeat / frequency / presence penalties over the reply's last ``penalty_last_n`` tokens, then
  (first token only) the bans, top-k, top-p, min-p on the tempered-to-be logits, then the
  temperature, then a seeded draw; temperature 0 is greedy after the penalties and bans.
  This is llama.cpp's own order (its common sampler, and what ``general.sampling.sequence``
  says), so the exported GGUF samples the same way in any llama.cpp front end;
- the first-token bans (:func:`first_token_bans`): no reply may end, or begin with ``DONE``
  or whitespace, before it has begun;
- the retries for an empty reply (:data:`TRIES` in all, :meth:`Decoding.retry`);
- the stop strings (:attr:`Decoding.stops`: ``DONE`` and a request's own) and the logit
  biases (:meth:`Decoding.biases`: the fitted end and separator biases on their tokens).

The runtimes implement it: ``voice.hf`` (transformers: ``twin eval``, training's checks, the
transformers server backend) and ``voice.llama`` (llama.cpp: the server, ``twin chat``,
``twin eval`` on the exported GGUF). ``tests/voice/test_sampler_parity.py`` feeds the same
logits to both and checks that the distributions they sample from are the same.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

from core.settings import Sampling
from core.terminator import DONE, StyleTokens

SAMPLER_ORDER = ("logit_bias", "penalties", "first_token_bans", "top_k", "top_p", "min_p", "temperature", "dist")
# The same order in llama.cpp's names, for the GGUF's general.sampling.sequence (logit biases
# always come first there; the first-token bans are twin's own and have no llama.cpp name).
LLAMA_SAMPLER_SEQUENCE = "penalties;top_k;top_p;min_p;temperature"

TRIES = 3                 # a reply empty once cleaned is generated again, at most this often in all
_DEFAULT = Sampling()
RETRY_TEMPERATURE = _DEFAULT.temperature   # a greedy request's retries sample at this temperature


@dataclass(frozen=True)
class Decoding:
    temperature: float = _DEFAULT.temperature
    top_k: int = _DEFAULT.top_k
    top_p: float = _DEFAULT.top_p
    min_p: float = _DEFAULT.min_p
    max_tokens: int = _DEFAULT.max_tokens
    repeat_penalty: float = _DEFAULT.repeat_penalty
    presence_penalty: float = _DEFAULT.presence_penalty
    frequency_penalty: float = _DEFAULT.frequency_penalty
    penalty_last_n: int = _DEFAULT.penalty_last_n
    end_bias: float = _DEFAULT.end_bias
    separator_bias: float = _DEFAULT.separator_bias
    seed: int | None = None          # None: a fresh seed per request
    stop: tuple[str, ...] = ()       # a request's extra strings that end the reply (not shown)

    @classmethod
    def from_sampling(cls, sampling: Sampling, **changes) -> "Decoding":
        """The contract for the twin's persisted defaults (``changes`` as :meth:`with_changes`)."""
        own = {f.name for f in dataclasses.fields(cls)}
        base = cls(**{f.name: getattr(sampling, f.name) for f in dataclasses.fields(Sampling) if f.name in own})
        return base.with_changes(**changes)

    def with_changes(self, **changes) -> "Decoding":
        """A copy with the given fields replaced (``None`` values leave a field as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    @property
    def stops(self) -> tuple[str, ...]:
        """Strings that end a reply and are not shown: the terminator, then the request's own."""
        return (DONE, *(s for s in self.stop if s))

    def retry(self, attempt: int) -> "Decoding":
        """The settings for the ``attempt``-th try (0 = the first) of a reply that came out empty:
        another seed each time, and a greedy request samples (at :data:`RETRY_TEMPERATURE`),
        since greedy would only say the same again."""
        if attempt == 0:
            return self
        return dataclasses.replace(self, seed=None if self.seed is None else (self.seed + attempt) & 0x7FFFFFFF,
                                   temperature=self.temperature if self.temperature > 0 else RETRY_TEMPERATURE)

    def biases(self, tokens: StyleTokens) -> dict[int, float]:
        """Token id -> logit bias: the fitted end and separator biases on the model's tokens."""
        return tokens.biases(self.end_bias, self.separator_bias)

    def sampling(self) -> Sampling:
        """Back to the persisted form (the request-only fields dropped)."""
        return Sampling(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Sampling)})


def greedy(sampling: Sampling | None = None) -> Decoding:
    """Greedy decoding under the twin's cap and penalties (training's checks of the valid split)."""
    return Decoding.from_sampling(sampling or Sampling()).with_changes(temperature=0.0)


# -- the first-token bans -----------------------------------------------------------------------

# Texts whose token, when the text is a single token, may not begin a reply: every beginning of
# the terminator (with and without the space before it) and whitespace. Each would leave the
# reply empty once DONE is cut off and the text trimmed.
_BANNED_STARTS = tuple(dict.fromkeys(
    [p for k in range(1, len(DONE) + 1) for p in (DONE[:k], " " + DONE[:k])] + [" ", "  ", "\n", "\n\n", "\t"]))


def first_token_bans(tokenize: Callable[[str], list[int]], never_first: Iterable[int]) -> frozenset[int]:
    """The tokens a reply may not start with, for one tokenizer.

    ``tokenize``: text -> ids, no special tokens added; ``never_first``: the runtime's
    end-of-generation and control tokens (none of them shows text: a reply that began with one
    would be over, or another turn, before it said anything). Both runtimes of a model get the
    same set: their tokenizers agree (``twin export`` checks it) and they mark the same tokens
    special (the GGUF's token types come from the HF tokenizer's)."""
    bans = {int(t) for t in never_first if t is not None and t >= 0}
    for text in _BANNED_STARTS:
        ids = tokenize(text)
        if len(ids) == 1:
            bans.add(ids[0])
    return frozenset(bans)


def turn_end_text(render: Callable[[list[dict]], str]) -> str:
    """What the chat template writes right after an assistant message (ChatML: ``<|im_end|>\\n``):
    its first token is the one the trained twin ends a reply with (``core.terminator``)."""
    mark = "\x1etwin-reply\x1e"
    rendered = render([{"role": "user", "content": "hi"}, {"role": "assistant", "content": mark}])
    return rendered.split(mark, 1)[1] if mark in rendered else ""

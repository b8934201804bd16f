"""Replies generated with transformers the way the server generates them, never empty.

Used by ``twin eval`` (sampled with the workspace's decoding defaults, ``core.settings.Sampling``)
and by training's checks on the valid split (greedy). Each reply is generated from the prompt
messages with the chat template, stops at ``DONE`` or the end-of-turn token, and has the
terminator cut off (``core.terminator``).

No empty replies: the end-of-turn token and the tokens that begin ``DONE`` (or are only
whitespace) cannot be the first token generated (transformers' ``begin_suppress_tokens``), and a
reply that is still empty after cleaning is generated again, sampled, up to ``retries`` times.
The [sampling] logit biases (``end_bias``, ``separator_bias``) go through transformers'
``sequence_bias``.

Prompts are generated in left-padded batches (one forward pass per token for the whole batch).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import Sampling
from core.terminator import (DONE, StyleTokens, is_terminated, join_messages, split_messages,
                             strip_terminator)

RETRIES = 3
_SAMPLING = Sampling()  # the decoding defaults are defined once, in core.settings
SERVER_TOP_K = 40
SERVER_MIN_P = 0.05


@dataclass
class Decoding:
    """How to pick tokens: greedy, or sampled like the server (temperature, top-p, penalties)."""

    do_sample: bool = True
    temperature: float = _SAMPLING.temperature
    top_p: float = _SAMPLING.top_p
    repeat_penalty: float = _SAMPLING.repeat_penalty
    presence_penalty: float = _SAMPLING.presence_penalty
    frequency_penalty: float = _SAMPLING.frequency_penalty
    end_bias: float = _SAMPLING.end_bias
    separator_bias: float = _SAMPLING.separator_bias
    max_new_tokens: int = 48

    @classmethod
    def from_sampling(cls, sampling: Sampling, max_new_tokens: int | None = None) -> "Decoding":
        return cls(do_sample=sampling.temperature > 0, temperature=sampling.temperature, top_p=sampling.top_p,
                   repeat_penalty=sampling.repeat_penalty, presence_penalty=sampling.presence_penalty,
                   frequency_penalty=sampling.frequency_penalty, end_bias=sampling.end_bias,
                   separator_bias=sampling.separator_bias, max_new_tokens=max_new_tokens or sampling.max_tokens)

    @classmethod
    def greedy(cls, max_new_tokens: int = 48) -> "Decoding":
        return cls(do_sample=False, max_new_tokens=max_new_tokens)


@dataclass
class Generated:
    text: str            # the visible reply: terminator cut off, messages joined with " | "
    terminated: bool     # ended with DONE or the end-of-turn token before the token limit
    attempts: int = 1    # 1 + the retries an empty reply needed


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """End-of-sequence / end-of-turn ids of the tokenizer and the model's generation config."""
    ids = {tokenizer.eos_token_id}
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
    for name in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        token = tokenizer.convert_tokens_to_ids(name)
        if isinstance(token, int) and token != tokenizer.unk_token_id:
            ids.add(token)
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def first_token_bans(tokenizer, model=None) -> list[int]:
    """Tokens a reply may not start with: the stop and other special tokens, tokens that are the
    beginning of ``DONE`` (``D``, `` DO`` ...) and whitespace-only tokens (each would leave the
    reply empty)."""
    bans = set(stop_token_ids(tokenizer, model)) | set(tokenizer.all_special_ids)  # none of them shows text
    pieces = [DONE[:k] for k in range(1, len(DONE) + 1)]
    for text in [p for piece in pieces for p in (piece, " " + piece)] + [" ", "  ", "\n", "\n\n", "\t"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            bans.add(ids[0])
    return sorted(bans)


def _penalty_processor(decoding: Decoding, prompt_length: int):
    """OpenAI-style presence/frequency penalties on the generated tokens, as llama.cpp applies them.

    transformers has only the multiplicative ``repetition_penalty`` (llama.cpp's
    ``repeat_penalty``); the additive presence/frequency penalties that llama.cpp and the
    OpenAI API take have no transformers counterpart, hence this small processor.
    """
    import torch
    from transformers import LogitsProcessor

    class PresenceFrequencyPenalty(LogitsProcessor):
        def __call__(self, input_ids, scores):
            generated = input_ids[:, prompt_length:]
            if generated.shape[1] == 0:
                return scores
            counts = torch.zeros_like(scores)
            counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
            return scores - decoding.frequency_penalty * counts - decoding.presence_penalty * (counts > 0).to(scores.dtype)

    return PresenceFrequencyPenalty()


def _generate_batch(model, tokenizer, prompts: list[list[dict]], decoding: Decoding, stops: list[int],
                    bans: list[int]) -> list[tuple[str, bool]]:
    import torch
    from transformers import LogitsProcessorList

    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues each row at its right end
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    length = batch["input_ids"].shape[1]
    kwargs = dict(do_sample=decoding.do_sample, max_new_tokens=decoding.max_new_tokens, eos_token_id=stops,
                  pad_token_id=tokenizer.pad_token_id, stop_strings=[DONE], tokenizer=tokenizer,
                  begin_suppress_tokens=bans)
    if decoding.do_sample:
        # top-k 40 and min-p 0.05: llama-cpp-python's defaults, which the server leaves in place
        kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p, top_k=SERVER_TOP_K,
                      min_p=SERVER_MIN_P)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None, min_p=None)
    if decoding.repeat_penalty != 1.0:
        kwargs["repetition_penalty"] = decoding.repeat_penalty
    if decoding.presence_penalty or decoding.frequency_penalty:
        kwargs["logits_processor"] = LogitsProcessorList([_penalty_processor(decoding, length)])
    biases = StyleTokens.find(lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]).biases(
        decoding.end_bias, decoding.separator_bias)
    if biases:  # transformers' own SequenceBiasLogitsProcessor, one-token sequences
        kwargs["sequence_bias"] = {(token,): bias for token, bias in biases.items()}
    with torch.no_grad():
        out = model.generate(**batch, **kwargs)
    results = []
    for row in out[:, length:].tolist():
        while row and row[-1] == tokenizer.pad_token_id:
            row.pop()
        stopped = bool(row) and row[-1] in stops
        text = tokenizer.decode(row, skip_special_tokens=True)
        results.append((text, stopped or is_terminated(text)))
    return results


def clean_reply(raw: str) -> str:
    """What a user sees of a raw generation: the text before DONE, as ``" | "``-joined messages."""
    return join_messages(split_messages(strip_terminator(raw)))


def generate_replies(model, tokenizer, prompts: list[list[dict]], decoding: Decoding, *, batch_size: int = 8,
                     retries: int = RETRIES) -> list[Generated]:
    """A reply to each prompt (a list of chat messages), never empty unless ``retries`` more
    tries all came out empty too."""
    stops = stop_token_ids(tokenizer, model)
    bans = first_token_bans(tokenizer, model)
    was_training = model.training
    model.eval()
    try:
        results: list[Generated] = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            results += [Generated(clean_reply(text), done)
                        for text, done in _generate_batch(model, tokenizer, chunk, decoding, stops, bans)]
        # An empty reply is generated again, sampled (a greedy retry would only repeat itself).
        again = decoding if decoding.do_sample else Decoding(max_new_tokens=decoding.max_new_tokens)
        for _ in range(retries):
            empty = [i for i, r in enumerate(results) if not r.text]
            if not empty:
                break
            redo = _generate_batch(model, tokenizer, [prompts[i] for i in empty], again, stops, bans)
            for i, (text, done) in zip(empty, redo):
                results[i] = Generated(clean_reply(text), done, results[i].attempts + 1)
        return results
    finally:
        model.train(was_training)

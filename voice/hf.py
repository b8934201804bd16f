"""The transformers runtime of the decoding contract (voice.decoding).

:func:`logits_processors` is the contract as transformers' logits processors, in the contract's
order: the fitted logit biases (transformers' ``SequenceBiasLogitsProcessor``), llama.cpp's
penalties over the reply's last ``penalty_last_n`` tokens (:class:`LlamaPenalties`: transformers'
own repetition penalty looks at the prompt too and has no window, and it has no presence or
frequency penalty at all), the first-token bans (``SuppressTokensAtBeginLogitsProcessor``), then
top-k, top-p, min-p and the temperature (transformers' warpers, applied here in llama.cpp's
order: ``generate`` would apply its own temperature first). The same list drives both users:

- :func:`generate_replies`: prompts in left-padded batches through ``model.generate`` (twin eval
  without an exported GGUF, training's checks of the valid split);
- :class:`TransformersBackend`: one streamed reply at a time, the base model with the
  workspace's LoRA adapter (``twin serve --backend transformers``, ``twin chat``).

Both stop at an end-of-generation token or ``DONE`` and show what a client of the server sees
(voice.replies.visible_text); an empty reply is generated again as the contract says.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import REQUEST_TIMEOUT_S
from core.terminator import StyleTokens, is_terminated, split_messages

from .backend import DEFAULT_CONTEXT, Backend, BackendError, PromptTooLong, prompt_segments
from .decoding import TRIES, Decoding, first_token_bans, turn_end_text
from .queueing import Gate
from .replies import Reply, visible_text

def stop_token_ids(tokenizer, model=None) -> list[int]:
    """Where a reply stops: end of sequence (the tokenizer's and the model's generation
    config's), the end-of-turn token and every other special token. As llama.cpp stops at every
    end-of-generation or control token (``<|im_start|>`` would begin another turn), so does this."""
    ids = {tokenizer.eos_token_id, *tokenizer.all_special_ids}
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


@dataclass(frozen=True)
class TokenizerVoice:
    """What the contract needs to know about one HF tokenizer: where a reply stops, which tokens
    may not begin it, which tokens the fitted biases move."""

    stops: tuple[int, ...]
    first_banned: frozenset[int]
    style_tokens: StyleTokens

    @classmethod
    def of(cls, tokenizer, model=None) -> "TokenizerVoice":
        stops = stop_token_ids(tokenizer, model)

        def plain(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        bans = first_token_bans(plain, stops)  # none of them shows text: none may begin a reply
        tail = turn_end_text(lambda m: tokenizer.apply_chat_template(m, tokenize=False))
        end = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail.strip() else []
        end_id = end[0] if end and end[0] in stops else tokenizer.eos_token_id
        return cls(tuple(stops), bans, StyleTokens.find(plain, end_id))


def _penalties_class():
    import torch
    from transformers import LogitsProcessor

    class LlamaPenalties(LogitsProcessor):
        """llama.cpp's penalties on the last ``last_n`` generated tokens (after ``prompt_length``):
        a token seen there has its logit divided by ``repeat`` (multiplied when negative), then
        lowered by ``frequency`` x its count and by ``presence`` once."""

        def __init__(self, decoding: Decoding, prompt_length: int):
            self.repeat, self.frequency = decoding.repeat_penalty, decoding.frequency_penalty
            self.presence, self.last_n, self.prompt_length = decoding.presence_penalty, decoding.penalty_last_n, prompt_length

        def __call__(self, input_ids, scores):
            generated = input_ids[:, self.prompt_length:]
            if self.last_n >= 0:
                generated = generated[:, max(0, generated.shape[1] - self.last_n):] if self.last_n else generated[:, :0]
            if generated.shape[1] == 0:
                return scores
            counts = torch.zeros_like(scores)
            counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
            seen = counts > 0
            scores = torch.where(seen & (scores <= 0), scores * self.repeat, torch.where(seen, scores / self.repeat, scores))
            return scores - self.frequency * counts - self.presence * seen.to(scores.dtype)

    return LlamaPenalties


def logits_processors(decoding: Decoding, voice: TokenizerVoice, prompt_length: int):
    """The contract (voice.decoding.SAMPLER_ORDER) as a ``LogitsProcessorList``; after it, a
    sampled token is drawn from the softmax of the scores (argmax when greedy)."""
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import (MinPLogitsWarper, SequenceBiasLogitsProcessor,
                                                        SuppressTokensAtBeginLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    processors = LogitsProcessorList()
    biases = decoding.biases(voice.style_tokens)
    if biases:
        processors.append(SequenceBiasLogitsProcessor([[[token], bias] for token, bias in biases.items()]))
    if decoding.repeat_penalty != 1 or decoding.frequency_penalty or decoding.presence_penalty:
        processors.append(_penalties_class()(decoding, prompt_length))
    if voice.first_banned:
        processors.append(SuppressTokensAtBeginLogitsProcessor(sorted(voice.first_banned), prompt_length))
    if not decoding.greedy:
        if decoding.top_k > 0:
            processors.append(TopKLogitsWarper(decoding.top_k))
        if decoding.top_p < 1:
            processors.append(TopPLogitsWarper(max(decoding.top_p, 1e-6)))  # 0: the top token alone
        if decoding.min_p > 0:
            processors.append(MinPLogitsWarper(decoding.min_p))
        processors.append(TemperatureLogitsWarper(decoding.temperature))
    return processors


# -- batched generation (twin eval, training's checks) -------------------------------------------

def _generate_batch(model, tokenizer, voice: TokenizerVoice, prompts: list[list[dict]],
                    decoding: Decoding) -> list[Reply]:
    import torch
    from transformers import GenerationConfig

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
    # Every sampler is the contract's (logits_processor); generate's own are all off.
    config = GenerationConfig(do_sample=not decoding.greedy, max_new_tokens=decoding.max_tokens,
                              eos_token_id=list(voice.stops), pad_token_id=tokenizer.pad_token_id,
                              temperature=1.0, top_k=0, top_p=1.0, stop_strings=list(decoding.stops))
    with torch.no_grad():
        out = model.generate(**batch, generation_config=config, tokenizer=tokenizer,
                             logits_processor=logits_processors(decoding, voice, length))
    replies = []
    stops = set(voice.stops)
    for row in out[:, length:].tolist():
        end = next((i for i, token in enumerate(row) if token in stops), None)  # padding follows it
        row = row if end is None else row[:end]
        raw = tokenizer.decode(row, skip_special_tokens=True)
        text, stopped = visible_text(raw, decoding.stop)
        ended = end is not None or stopped or is_terminated(raw)
        replies.append(Reply(text, "stop" if ended else "length", length, len(row)))
    return replies


def generate_replies(model, tokenizer, prompts: list[list[dict]], decoding: Decoding, *, batch_size: int = 8,
                     tries: int = TRIES, seed: int | None = None) -> list[Reply]:
    """A reply to each prompt (a list of chat messages), as a client of the server would see
    it, never empty unless every one of ``tries`` came out empty. ``seed`` seeds torch's
    generator first (the draws of a batch are shared, so a reply depends on its batch)."""
    import torch

    voice = TokenizerVoice.of(tokenizer, model)
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        results: list[Reply] = []
        for start in range(0, len(prompts), batch_size):
            results += _generate_batch(model, tokenizer, voice, prompts[start:start + batch_size], decoding)
        for attempt in range(1, tries):
            empty = [i for i, r in enumerate(results) if not split_messages(r.text)]
            if not empty:
                break
            again = _generate_batch(model, tokenizer, voice, [prompts[i] for i in empty], decoding.retry(attempt))
            for i, reply in zip(empty, again):
                reply.tries = attempt + 1
                results[i] = reply
        return results
    finally:
        model.train(was_training)


# -- the streaming backend (twin serve --backend transformers, twin chat) ------------------------

class TransformersBackend(Backend):
    """The base model with the workspace's LoRA adapter applied (no export needed), on CPU or GPU,
    one reply at a time."""

    def __init__(self, base_path: str | Path, adapter_dir: Path | None = None, *, threads: int | None = None,
                 seed: int = 0, gate: Gate | None = None, timeout: float | None = REQUEST_TIMEOUT_S):
        super().__init__(gate, timeout)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - both are project dependencies
            raise BackendError(f"the transformers backend needs torch and transformers: {exc}") from None
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        tokenizer_dir = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() \
            else base_path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
            model = AutoModelForCausalLM.from_pretrained(
                str(base_path), dtype=torch.float16 if self.device == "cuda" else torch.float32)
            if adapter_dir is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter_dir))
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load base {base_path} with adapter {adapter_dir}: {exc}") from None
        self.model = model.to(self.device).eval()
        self.seed = seed
        self._count = 0
        self.name = Path(adapter_dir).parent.name + "-adapter" if adapter_dir else Path(base_path).name
        self.voice = TokenizerVoice.of(self.tokenizer, model)
        self.first_banned, self.style_tokens = self.voice.first_banned, self.voice.style_tokens
        self.context = getattr(model.config, "max_position_embeddings", DEFAULT_CONTEXT)

    def tokenize_prompt(self, messages: list[dict]) -> list[int]:
        """The prompt's tokens: template markup with special tokens, message contents as plain text."""
        render = lambda marked: self.tokenizer.apply_chat_template(  # noqa: E731
            marked, tokenize=False, add_generation_prompt=True)
        ids: list[int] = []
        for text, content in prompt_segments(render, messages):
            ids += self.tokenizer(text, add_special_tokens=False, split_special_tokens=content)["input_ids"]
        return ids

    def _pieces(self, messages, decoding, stats):
        torch = self.torch
        prompt = self.tokenize_prompt(messages)
        stats["prompt_tokens"] = len(prompt)
        if len(prompt) + decoding.max_tokens > self.context:
            raise PromptTooLong(f"the conversation ({len(prompt)} tokens) is too long for the model's "
                                f"context of {self.context}")
        self._count += 1
        generator = torch.Generator(device="cpu").manual_seed(
            (self.seed + self._count if decoding.seed is None else decoding.seed) & 0xFFFFFFFF)
        processors = logits_processors(decoding, self.voice, len(prompt))
        stats["finish_reason"] = "length"
        ids = torch.tensor([prompt])
        text, past, step_input = "", None, ids.to(self.device)
        with torch.no_grad():
            for _ in range(decoding.max_tokens):
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                scores = processors(ids, out.logits[:, -1].float().cpu())
                if decoding.greedy:
                    token = int(scores[0].argmax())
                else:
                    token = int(torch.multinomial(torch.softmax(scores[0], dim=-1), 1, generator=generator))
                if token in self.voice.stops:
                    stats["finish_reason"] = "stop"
                    return
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
                stats["completion_tokens"] += 1
                new = self.tokenizer.decode(ids[0, len(prompt):].tolist(), skip_special_tokens=True)
                if not new.endswith("\ufffd") and len(new) > len(text):  # wait for whole characters
                    piece, text = new[len(text):], new
                    yield piece
                    if is_terminated(text):
                        stats["finish_reason"] = "stop"
                        return
                step_input = torch.tensor([[token]], device=self.device)

"""The transformers backend: the base model with the workspace's LoRA adapter applied (peft),
for trying the twin before ``twin export``; on CPU or GPU, one reply at a time.

Decoding follows server.decoding.Decoding like the llama.cpp backend: repetition penalty
(transformers' own processor), presence and frequency penalties (OpenAI's definition, which
transformers has no processor for: subtracted from the logits here), the fitted end and
separator biases, top-k 40, top-p and min-p 0.05, then the temperature (transformers' warpers,
in llama.cpp's order; top-k and min-p at llama-cpp-python's defaults, as the llama.cpp backend
samples), a seed. The first token cannot end the reply; the prompt's message contents are tokenized as
plain text (server.backend_base).
"""
from __future__ import annotations

from pathlib import Path

from core.terminator import StyleTokens, is_terminated
from core.settings import REQUEST_TIMEOUT_S

from trainer.generation import SERVER_MIN_P, SERVER_TOP_K, first_token_bans, stop_token_ids

from .backend_base import Backend, BackendError, PromptTooLong, prompt_segments
from .queueing import Gate


class TransformersBackend(Backend):
    """The base model with the workspace's LoRA adapter applied (no export needed), on CPU or GPU."""

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
        # the same stop tokens and first-token bans as twin eval's generation (trainer.generation)
        self.stop_ids = set(stop_token_ids(self.tokenizer, model))
        self.first_banned = first_token_bans(self.tokenizer, model)
        self.style_tokens = StyleTokens.find(lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"])
        self.context = getattr(model.config, "max_position_embeddings", 2048)

    def tokenize_prompt(self, messages: list[dict]) -> list[int]:
        """The prompt's tokens: template markup with special tokens, message contents as plain text."""
        render = lambda marked: self.tokenizer.apply_chat_template(  # noqa: E731
            marked, tokenize=False, add_generation_prompt=True)
        ids: list[int] = []
        for text, content in prompt_segments(render, messages):
            ids += self.tokenizer(text, add_special_tokens=False, split_special_tokens=content)["input_ids"]
        return ids

    def _pieces(self, messages, decoding, stats):
        from transformers.generation.logits_process import (MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
                                                            TopKLogitsWarper, TopPLogitsWarper)

        torch = self.torch
        prompt = self.tokenize_prompt(messages)
        stats["prompt_tokens"] = len(prompt)
        if len(prompt) + decoding.max_tokens > self.context:
            raise PromptTooLong(f"the conversation ({len(prompt)} tokens) is too long for the model's "
                                f"context of {self.context}")
        self._count += 1
        generator = torch.Generator(device="cpu").manual_seed(
            (self.seed + self._count if decoding.seed is None else decoding.seed) & 0xFFFFFFFF)
        repeat = RepetitionPenaltyLogitsProcessor(decoding.repeat_penalty) if decoding.repeat_penalty != 1 else None
        top_p = TopPLogitsWarper(max(decoding.top_p, 1e-6)) if decoding.top_p < 1 else None  # 0: the top token
        top_k, min_p = TopKLogitsWarper(SERVER_TOP_K), MinPLogitsWarper(SERVER_MIN_P)
        biases = self.style_tokens.biases(decoding.end_bias, decoding.separator_bias)
        bias_ids, bias_values = list(biases), torch.tensor(list(biases.values()))
        stats["finish_reason"] = "length"
        out_ids: list[int] = []
        text, past, step_input = "", None, torch.tensor([prompt], device=self.device)
        with torch.no_grad():
            for _ in range(decoding.max_tokens):
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1].float().cpu()
                if bias_ids:  # the twin's fitted length and separator biases ([sampling])
                    logits[bias_ids] += bias_values
                if not out_ids:
                    logits[self.first_banned] = -float("inf")  # no reply may end before it begins
                else:
                    history = torch.tensor(out_ids)
                    if repeat is not None:
                        logits = repeat(history[None], logits[None])[0]
                    if decoding.presence_penalty or decoding.frequency_penalty:
                        counts = torch.bincount(history, minlength=logits.shape[0]).float()
                        logits -= decoding.frequency_penalty * counts + decoding.presence_penalty * (counts > 0)
                if decoding.temperature <= 0:
                    token = int(logits.argmax())
                else:
                    # llama.cpp's order: top-k, top-p, min-p on the plain logits, then the temperature
                    scores = top_k(None, logits[None])
                    if top_p is not None:
                        scores = top_p(None, scores)
                    scores = min_p(None, scores) / decoding.temperature
                    token = int(torch.multinomial(torch.softmax(scores[0], dim=-1), 1, generator=generator))
                if token in self.stop_ids:
                    stats["finish_reason"] = "stop"
                    return
                out_ids.append(token)
                stats["completion_tokens"] += 1
                new = self.tokenizer.decode(out_ids, skip_special_tokens=True)
                if not new.endswith("\ufffd") and len(new) > len(text):  # wait for whole characters
                    piece, text = new[len(text):], new
                    yield piece
                    if is_terminated(text):
                        stats["finish_reason"] = "stop"
                        return
                step_input = torch.tensor([[token]], device=self.device)

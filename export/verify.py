"""Parity check: does the GGUF, run by llama.cpp, compute what the HF model computes?

The same token ids (from the HF tokenizer) go through both models; at every position the
next-token logits are compared: the fraction of positions whose top-1 token agrees, and the
largest absolute logit difference. Separately, llama.cpp's own tokenizer is checked against
the HF tokenizer on a few probe strings (a mismatch is reported, not failed: token ids fed
directly are unaffected).

Thresholds (``min_agreement``) come from SmolLM2-135M-Instruct (30 layers, 49k vocabulary)
and the default prompts (90 positions), run by llama-cpp-python 0.3.36 on CPU:

    type    size     top-1   max|diff|   (llama.cpp also quantizes activations to 8 bits
    F16     271 MB   100%    0.08         for quantized weights; transformers on the
    BF16    271 MB   98.9%   0.39         dequantized Q8_0 weights alone agrees 95.6%)
    Q8_0    145 MB   90.0%   2.2
    Q6_K    138 MB   90.0%   3.8
    Q5_K_M  112 MB   76.7%   8.7
    Q4_K_M  106 MB   82.2%   8.0
    Q4_0     92 MB   60.0%   17

``twin export`` takes its transformers side from ``export.reference`` (the merged model
streamed one layer at a time) and computes it before llama.cpp opens a GGUF, so the two never
sit in memory together; ``gguf_logits`` against ``gguf_logits`` (the quantized GGUF against
the F16 one, llama.cpp on both sides) is the cheaper check for big models. ``verify_gguf``
and the tests use an independent path: ``load_reference_model`` runs the base in its own
dtype with the adapter applied by PEFT (not merged), each layer upcast to float32 only while
it computes.

A small model loses more to quantization than the usual 7B examples. The minimums sit well
below those figures, since their job is to catch a broken export (wrong Q/K permutation,
vocabulary or norms score near 0%), not to grade the quantization.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_PROMPTS = (
    "hello, how are you? | im good just got back from climbing | u?",
    "want to get tacos tonight? bartaco at 7",
    "The quick brown fox jumps over the lazy dog. 1234 + 5678 = 6912!",
)
CHAT_PROBE = [
    {"role": "system", "content": "you are maya. text back the way maya does."},
    {"role": "user", "content": "what's your name?"},
]
TOKENIZER_PROBES = (
    "hello, how are you? omg hiii | im good",
    "lowkey tired ngl... pickle says hi!!  ya fr lmaooo",
    "Café déjà vu — naïve résumé ¿qué? Привет שלום",
    "meet at 7:30, room 221b (call 555-0134)",
    "<|im_start|>user\nhey<|im_end|>\n<|im_start|>assistant\n",
)

# Minimum top-1 agreement per output type (see the module docstring for measured values).
_MIN_AGREEMENT = {
    "F32": 1.0, "F16": 1.0, "BF16": 0.9, "Q8_0": 0.8, "Q6_K": 0.75,
    "Q5_K_M": 0.65, "Q5_K_S": 0.65, "Q5_0": 0.6, "Q5_1": 0.6,
    "Q4_K_M": 0.6, "Q4_K_S": 0.55, "IQ4_XS": 0.5, "IQ4_NL": 0.5, "Q4_0": 0.45, "Q4_1": 0.45,
}
_LOW_BIT_MIN = 0.3  # Q3_K_*, Q2_K


def min_agreement(quant: str) -> float:
    """The top-1 agreement an export of type ``quant`` must reach to pass."""
    return _MIN_AGREEMENT.get(quant.upper(), _LOW_BIT_MIN)


@dataclass
class VerifyResult:
    top1_agreement: float              # fraction of positions whose argmax agrees exactly
    max_abs_diff: float                # largest |logit_gguf - logit_hf| over all positions
    mean_abs_diff: float
    n_positions: int
    near_ties: int = 0                 # disagreements where HF rates both tokens within tie_tol
    tokenizer_mismatches: list[str] = field(default_factory=list)  # probes tokenized differently
    tokenizer_checked: bool = True

    @property
    def agreement(self) -> float:
        """Top-1 agreement, not counting near-ties as disagreements (used for pass/fail)."""
        n_agree = round(self.top1_agreement * self.n_positions)
        return (n_agree + self.near_ties) / self.n_positions

    @property
    def tokenizer_match(self) -> bool:
        return not self.tokenizer_mismatches

    def summary(self) -> str:
        text = f"top-1 agreement {self.top1_agreement:.1%}"
        if self.near_ties:
            text += f" (+{self.near_ties} near-tie)"
        text += f" over {self.n_positions} positions, max |logit diff| {self.max_abs_diff:.3g}"
        if self.tokenizer_checked:
            text += ", tokenizer matches" if self.tokenizer_match else \
                f", tokenizer differs on {len(self.tokenizer_mismatches)} probe(s)"
        return text


def prompt_ids(tokenizer, prompts=None) -> list[list[int]]:
    """Token ids of the check's prompts (the defaults and a chat-template probe)."""
    prompts = DEFAULT_PROMPTS if prompts is None else prompts
    batches = [tokenizer(p)["input_ids"] for p in prompts]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(CHAT_PROBE, tokenize=False, add_generation_prompt=True)
        batches.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    batches = [list(ids) for ids in batches if ids]
    if not batches:
        raise ValueError("no prompts to verify with")
    return batches


_CHUNK_BYTES = 64 << 20   # a Linear whose float32 weight is bigger is upcast a slice of rows at a time


def _upcast_while_computing(model) -> list:
    """Hooks that give each module float32 weights only while it runs (then its own dtype
    again), so a 16-bit model computes in float32 holding one layer's float32 copy at a time.
    An embedding looks its rows up in 16 bits (exact) and returns them as float32; a big
    Linear (the vocabulary-sized output layer) multiplies slice by slice of its rows.
    (transformers has no such mode; accelerate's offload hooks move devices, not dtypes.)"""
    import torch

    handles = []
    for module in model.modules():
        params = [p for p in module.parameters(recurse=False) if p.is_floating_point() and p.dtype != torch.float32]
        if not params:
            continue
        if isinstance(module, torch.nn.Embedding):
            handles.append(module.register_forward_hook(lambda mod, args, output: output.float()))
            continue
        if isinstance(module, torch.nn.Linear) and module.weight.numel() * 4 > _CHUNK_BYTES:
            module.forward = _chunked_linear(module)
            continue
        dtype = params[0].dtype

        def before(mod, args, params=params):
            for p in params:
                p.data = p.data.to(torch.float32)

        def after(mod, args, output, params=params, dtype=dtype):
            for p in params:
                p.data = p.data.to(dtype)

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    return handles


def _chunked_linear(module):
    import torch

    rows = max(1, _CHUNK_BYTES // (4 * module.in_features))

    def forward(x):
        x = x.float()
        parts = [x @ module.weight[i:i + rows].float().T for i in range(0, module.out_features, rows)]
        out = torch.cat(parts, dim=-1)
        return out + module.bias.float() if module.bias is not None else out

    return forward


def load_reference_model(base_dir: Path | str, adapter_dir: Path | str | None = None):
    """The HF model in its checkpoint's dtype (16-bit for a 16-bit base), with the adapter
    applied by PEFT, computing in float32 layer by layer (see ``_upcast_while_computing``)."""
    import warnings

    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto", attn_implementation="eager")
    if adapter_dir is not None:
        from peft import PeftModel

        rows = model.get_input_embeddings().weight.shape[0]
        saved = _adapter_vocab(adapter_dir)
        if saved and saved > rows:
            model.resize_token_embeddings(saved, mean_resizing=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, str(adapter_dir), torch_device="cpu")
    model.eval()
    if any(p.dtype != torch.float32 for p in model.parameters()):
        _upcast_while_computing(model)
    return model


def _adapter_vocab(adapter_dir: Path | str) -> int | None:
    """Rows of the embeddings saved with the adapter (when the trainer added tokens)."""
    path = Path(adapter_dir) / "adapter_model.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            if key.endswith("embed_tokens.weight"):
                return int(f.get_slice(key).get_shape()[0])
    return None


def reference_logits(model, batches: list[list[int]]) -> list[np.ndarray]:
    """transformers' next-token logits (float32) at every position of every batch."""
    import torch

    out = []
    with torch.no_grad():
        for ids in batches:
            out.append(model(torch.tensor([ids])).logits[0].float().numpy())
    return out


_LLAMA_BATCH = 16


def gguf_logits(gguf_path: Path | str, batches: list[list[int]], *, lora_path: Path | str | None = None,
                n_threads: int | None = None, tokenizer=None) -> tuple[list[np.ndarray], list[str] | None]:
    """llama.cpp's logits for each batch; with ``tokenizer``, also the probe strings llama.cpp
    tokenizes differently from it (else None)."""
    from voice.llama_runtime import default_threads, open_llama

    n_ctx = max(len(ids) for ids in batches) + 8
    extra = {"lora_path": str(lora_path)} if lora_path is not None else {}
    # Small batches: llama.cpp's output and compute buffers hold n_batch x vocabulary floats
    # (128k-vocabulary models: 0.5 MB a token), on top of the mapped GGUF.
    llm = open_llama(gguf_path, logits_all=True, n_ctx=n_ctx, n_batch=min(n_ctx, _LLAMA_BATCH),
                     n_threads=n_threads or default_threads(), verbose=False, **extra)
    try:
        out = []
        for ids in batches:
            llm.reset()
            llm.eval(ids)
            out.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
        mismatches = None
        if tokenizer is not None:
            mismatches = [text for text in TOKENIZER_PROBES
                          if list(tokenizer(text, add_special_tokens=False)["input_ids"])
                          != list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))]
            if mismatches:
                log.warning("llama.cpp tokenizes %d probe(s) differently from HF: %r", len(mismatches), mismatches)
    finally:
        llm.close()
    return out, mismatches


def compare_logits(want: list[np.ndarray], got: list[np.ndarray], *, tie_tol: float = 0.05,
                   tokenizer_mismatches: list[str] | None = None) -> VerifyResult:
    """Top-1 agreement and logit differences of ``got`` against the reference ``want``."""
    agree = total = ties = 0
    max_diff = sum_diff = 0.0
    for ref, out in zip(want, got):
        n = min(ref.shape[-1], out.shape[-1])
        ref, out = ref[:, :n], out[:, :n]
        ref_top, out_top = ref.argmax(-1), out.argmax(-1)
        same = ref_top == out_top
        agree += int(same.sum())
        rows = np.arange(len(ref))
        gap = ref[rows, ref_top] - ref[rows, out_top]
        ties += int(((~same) & (gap <= tie_tol)).sum())
        total += len(ref)
        diff = np.abs(ref - out)
        max_diff = max(max_diff, float(diff.max()))
        sum_diff += float(diff.mean()) * len(ref)
    return VerifyResult(top1_agreement=agree / total, max_abs_diff=max_diff, mean_abs_diff=sum_diff / total,
                        n_positions=total, near_ties=ties, tokenizer_mismatches=tokenizer_mismatches or [],
                        tokenizer_checked=tokenizer_mismatches is not None)


def verify_gguf(gguf_path: Path | str, hf_dir: Path | str, prompts=None, *,
                n_threads: int | None = None, check_tokenizer: bool = True, tie_tol: float = 0.05,
                hf_model=None, hf_tokenizer=None, lora_path: Path | str | None = None) -> VerifyResult:
    """Compare llama.cpp on ``gguf_path`` with transformers on ``hf_dir``.

    A position where llama.cpp's top token is not transformers' but transformers scores it
    within ``tie_tol`` of its own top logit counts as a near-tie: reported, and not held
    against the export in ``VerifyResult.agreement`` (F16 rounding can flip such ties).

    ``hf_model`` / ``hf_tokenizer`` may be passed to reuse already-loaded objects. With
    ``lora_path`` (a GGUF LoRA adapter from ``export.lora_gguf``) llama.cpp runs ``gguf_path``
    with the adapter applied, to be compared with the merged model (or the PEFT model) in
    ``hf_dir`` / ``hf_model``.
    """
    from transformers import AutoTokenizer

    tokenizer = hf_tokenizer or AutoTokenizer.from_pretrained(hf_dir)
    batches = prompt_ids(tokenizer, prompts)
    model = hf_model if hf_model is not None else load_reference_model(hf_dir)
    want = reference_logits(model.eval(), batches)
    if hf_model is None:
        del model
    got, mismatches = gguf_logits(gguf_path, batches, lora_path=lora_path, n_threads=n_threads,
                                  tokenizer=tokenizer if check_tokenizer else None)
    return compare_logits(want, got, tie_tol=tie_tol, tokenizer_mismatches=mismatches)

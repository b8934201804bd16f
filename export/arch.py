"""The public spec of each architecture twin exports: how llama.cpp sees a Hugging Face model.

One :class:`ModelSpec` per model, built from its ``config.json`` by :func:`model_spec`, is
what both GGUF writers use (``export.gguf_writer`` for the model, ``export.lora_gguf`` for the
adapter alone):

- ``gguf_arch``/``tensor_map``: the llama.cpp architecture and tensor names, from the ``gguf``
  package's own tables (``gguf.MODEL_ARCH``, ``gguf.get_tensor_name_map``);
- ``hf_tensor_name``: a checkpoint's tensor name as the tables know it (Gemma 3's multimodal
  checkpoints nest the text model under ``language_model``), or None for tensors llama.cpp's
  text model does not use (vision tower, rotary caches);
- ``transform``: what a weight needs on its way into the GGUF (llama's Q/K row permutation
  for interleaved RoPE; Gemma's RMSNorm stores ``w`` for a scale of ``1 + w``);
- ``write_hparams``: the ``<arch>.*`` keys (sizes, RoPE, soft-capping, sliding window).

Supported families, each checked with a tiny random model against transformers in the tests:

    model_type            GGUF arch   what is special
    llama, mistral        llama       Q/K permuted for interleaved RoPE; llama3/linear RoPE scaling
    qwen2                 qwen2       q/k/v biases (NEOX RoPE: no permutation)
    qwen3                 qwen3       RMS norms on q and k per head
    phi3                  phi3        fused qkv_proj and gate_up_proj (llama.cpp keeps them fused)
    gemma2                gemma2      norms +1, embeddings scaled by sqrt(hidden) (done by
                                      llama.cpp), attention and final-logit soft-capping
    gemma3, gemma3_text   gemma3      as gemma2 plus q/k norms, local RoPE base 10000

The ``gguf`` package has the tables but not the per-family rules (those live in llama.cpp's
``convert_hf_to_gguf.py``, which no installed package ships importably), so the few rules
above are written here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import ExportInputError, UnsupportedModelError


@dataclass(frozen=True)
class ArchRule:
    gguf_arch: str                 # name of the gguf.MODEL_ARCH member
    permute_qk: bool = False       # llama.cpp's "llama" arch applies RoPE to adjacent pairs
    norm_offset: float = 0.0       # Gemma: the checkpoint stores w, the model scales by 1 + w
    needs_output: bool = False     # llama.cpp wants output.weight even when tied (phi3)
    family: str = ""


_RULES = {
    "llama": ArchRule("LLAMA", permute_qk=True, family="Llama 2/3.x"),
    "mistral": ArchRule("LLAMA", permute_qk=True, family="Mistral"),
    "qwen2": ArchRule("QWEN2", family="Qwen2/2.5"),
    "qwen3": ArchRule("QWEN3", family="Qwen3"),
    "phi3": ArchRule("PHI3", needs_output=True, family="Phi-3/3.5"),
    "gemma2": ArchRule("GEMMA2", norm_offset=1.0, family="Gemma 2"),
    "gemma3": ArchRule("GEMMA3", norm_offset=1.0, family="Gemma 3"),
    "gemma3_text": ArchRule("GEMMA3", norm_offset=1.0, family="Gemma 3"),
}

# Multimodal checkpoints (Gemma 3 4B+) nest the text model; the vision side is not exported.
_PREFIXES = (("model.language_model.", "model."), ("language_model.model.", "model."),
             ("language_model.lm_head.", "lm_head."))
_SKIP_PARTS = ("vision_tower", "multi_modal_projector", "rotary_emb.inv_freq", "attention.masked_bias")


def supported_list() -> str:
    families = dict.fromkeys(f"{r.family} ({t})" for t, r in _RULES.items())
    return ", ".join(families)


def read_config(model_dir: Path | str) -> dict[str, Any]:
    """``config.json`` of a HF model directory; a multimodal one's text part merged in."""
    cfg_path = Path(model_dir) / "config.json"
    if not cfg_path.is_file():
        raise ExportInputError(f"no config.json in {model_dir}: not a Hugging Face model directory")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportInputError(f"{cfg_path} is not valid JSON: {exc}") from None
    if isinstance(config.get("text_config"), dict):
        config = {**config, **config["text_config"], "model_type": config.get("model_type")}
    return config


def rope_parameters(config: dict[str, Any], layer_type: str = "full_attention") -> dict[str, Any]:
    """RoPE parameters from transformers 5 (``rope_parameters``, maybe per layer type) or
    transformers 4 (``rope_theta`` + ``rope_scaling``) configs."""
    params = dict(config.get("rope_parameters") or {})
    if layer_type in params and isinstance(params[layer_type], dict):
        params = dict(params[layer_type])
    for key, value in (config.get("rope_scaling") or {}).items():
        params.setdefault(key, value)
    if "rope_theta" not in params and "rope_theta" in config:
        params["rope_theta"] = config["rope_theta"]
    if layer_type == "sliding_attention" and "rope_local_base_freq" in config:
        params["rope_theta"] = config["rope_local_base_freq"]
    if "rope_type" not in params and "type" in params:
        params["rope_type"] = params["type"]
    params.setdefault("rope_theta", 10000.0)
    params.setdefault("rope_type", "default")
    params["rope_type"] = str(params["rope_type"]).lower()
    return params


def llama3_rope_factors(rope: dict[str, Any], head_dim: int) -> np.ndarray:
    """Per-frequency divisors of Llama 3.1+'s RoPE scaling (llama.cpp's ``rope_freqs``)."""
    base = float(rope["rope_theta"])
    factor = float(rope.get("factor", 8.0))
    low = float(rope.get("low_freq_factor", 1.0))
    high = float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    inv_freq = 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / inv_freq
    smooth = (old_ctx / wavelen - low) / (high - low)
    factors = np.where(
        wavelen < old_ctx / high, 1.0,
        np.where(wavelen > old_ctx / low, factor, 1.0 / ((1 - smooth) / factor + smooth)))
    return factors.astype(np.float32)


def permute_for_llama_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder Q/K projection rows from HF's rotate-half RoPE layout to the interleaved
    (pairwise) layout llama.cpp's "llama" arch applies RoPE in.

    HF keeps each head's two RoPE halves as [x0..x(d/2-1), x(d/2)..x(d-1)]; llama.cpp rotates
    adjacent pairs (x0, x1), (x2, x3), ... so row ``h*d + 2i + j`` must hold HF row
    ``h*d + j*d/2 + i``. transformers' GGUF loader applies the inverse when reading back.
    A LoRA's B matrix (the rows of ``B @ A``) is permuted the same way.
    """
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise UnsupportedModelError(f"Q/K projection with {rows} rows does not split into {n_head} heads")
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


@dataclass
class ModelSpec:
    """One model as llama.cpp sees it (see the module docstring)."""

    model_type: str
    rule: ArchRule
    config: dict[str, Any]
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    tied: bool
    rope: dict[str, Any] = field(default_factory=dict)

    @property
    def model_arch(self):
        import gguf

        return getattr(gguf.MODEL_ARCH, self.rule.gguf_arch)

    @property
    def arch_name(self) -> str:
        import gguf

        return gguf.MODEL_ARCH_NAMES[self.model_arch]

    def tensor_map(self):
        import gguf

        return gguf.get_tensor_name_map(self.model_arch, self.n_layer)

    # -- tensors ----------------------------------------------------------------------------
    @staticmethod
    def hf_tensor_name(name: str) -> str | None:
        """``name`` as the gguf tables know it, or None for a tensor the GGUF leaves out."""
        if any(part in name for part in _SKIP_PARTS):
            return None
        for old, new in _PREFIXES:
            if name.startswith(old):
                return new + name[len(old):]
        return name

    def gguf_name(self, hf_name: str, tensor_map=None) -> str:
        """The GGUF name of HF tensor ``hf_name`` (``model.layers.0.self_attn.q_proj.weight``
        -> ``blk.0.attn_q.weight``); UnsupportedModelError when llama.cpp has none."""
        name = self.hf_tensor_name(hf_name) or hf_name
        found = (tensor_map or self.tensor_map()).get_name(name, try_suffixes=(".weight", ".bias"))
        if found is None:
            raise UnsupportedModelError(f"tensor {hf_name!r} has no GGUF equivalent for {self.model_type}")
        return found

    def is_norm(self, hf_name: str) -> bool:
        return hf_name.endswith(("norm.weight", "layernorm.weight"))

    def transform(self, hf_name: str, data: np.ndarray) -> np.ndarray:
        """A model weight as the GGUF stores it (float32 in, float32 out)."""
        if self.rule.norm_offset and self.is_norm(hf_name):
            data = data + np.float32(self.rule.norm_offset)
        return self.permute_rows(hf_name, data)

    def rows_independent(self, hf_name: str) -> bool:
        """Whether ``transform`` treats each row alone (so a big tensor can go by slices)."""
        return not (self.rule.permute_qk and hf_name.rsplit(".", 1)[0].endswith(("q_proj", "k_proj")))

    def permute_rows(self, hf_name: str, data: np.ndarray) -> np.ndarray:
        """llama's Q/K row permutation (also applied to a LoRA's B matrix of q/k)."""
        if self.rule.permute_qk:
            stem = hf_name.rsplit(".", 1)[0] if hf_name.endswith((".weight", ".bias")) else hf_name
            if stem.endswith("q_proj"):
                return permute_for_llama_rope(data, self.n_head)
            if stem.endswith("k_proj"):
                return permute_for_llama_rope(data, self.n_head_kv)
        return data

    # -- metadata ---------------------------------------------------------------------------
    def context_length(self) -> int:
        n_ctx = int(self.config.get("max_position_embeddings") or 2048)
        window = self.config.get("sliding_window")
        if self.model_type == "mistral" and isinstance(window, int) and 0 < window < n_ctx:
            # llama.cpp's "llama" arch attends to the whole context; past the window the HF
            # model would not, so advertise the window as the trained context.
            n_ctx = window
        return n_ctx

    def rope_dims(self) -> int:
        return int(self.head_dim * float(self.config.get("partial_rotary_factor") or 1.0))

    def extra_tensors(self) -> dict[str, np.ndarray]:
        """Tensors the GGUF needs that the checkpoint does not hold (RoPE factor tables)."""
        import gguf

        out = {}
        if self.rope["rope_type"] == "llama3":
            out[gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"] = \
                llama3_rope_factors(self.rope, self.head_dim)
        if self.rope["rope_type"] in ("longrope", "su"):
            for key, tensor in (("long_factor", gguf.MODEL_TENSOR.ROPE_FACTORS_LONG),
                                ("short_factor", gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT)):
                factors = np.asarray(self.rope[key], dtype=np.float32)
                if factors.shape != (self.rope_dims() // 2,):
                    raise UnsupportedModelError(f"LongRoPE {key} has {factors.size} entries, "
                                                f"expected {self.rope_dims() // 2}")
                out[gguf.TENSOR_NAMES[tensor] + ".weight"] = factors
        return out

    def write_hparams(self, writer) -> None:
        """The ``<arch>.*`` keys of the GGUF (what llama.cpp's converter writes for the family)."""
        import gguf

        cfg = self.config
        writer.add_context_length(self.context_length())
        writer.add_embedding_length(self.n_embd)
        writer.add_block_count(self.n_layer)
        writer.add_feed_forward_length(int(cfg["intermediate_size"]))
        writer.add_head_count(self.n_head)
        writer.add_head_count_kv(self.n_head_kv)
        if self.head_dim != self.n_embd // self.n_head or self.rule.norm_offset:
            writer.add_key_length(self.head_dim)
            writer.add_value_length(self.head_dim)
        writer.add_rope_freq_base(float(self.rope["rope_theta"]))
        writer.add_rope_dimension_count(self.rope_dims())
        writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
        writer.add_vocab_size(self.n_vocab)
        rope_type = self.rope["rope_type"]
        if rope_type == "linear":
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(self.rope["factor"]))
        if rope_type in ("longrope", "su"):
            orig = int(cfg.get("original_max_position_embeddings") or self.context_length())
            writer.add_rope_scaling_orig_ctx_len(orig)
            scale = self.context_length() / orig
            writer.add_rope_scaling_attn_factors(
                1.0 if scale <= 1.0 else math.sqrt(1 + math.log(scale) / math.log(orig)))
        window = cfg.get("sliding_window")
        if self.rule.gguf_arch in ("PHI3", "GEMMA2", "GEMMA3") and isinstance(window, int) and window > 0:
            writer.add_sliding_window(window)
        if self.rule.gguf_arch == "GEMMA2":
            for key, add in (("attn_logit_softcapping", writer.add_attn_logit_softcapping),
                             ("final_logit_softcapping", writer.add_final_logit_softcapping)):
                if cfg.get(key) is not None:
                    add(float(cfg[key]))


def model_spec(config: dict[str, Any], where: Path | str = "the model") -> ModelSpec:
    """The :class:`ModelSpec` of a model ``config``; UnsupportedModelError (listing what is
    supported) for any other architecture or a variant llama.cpp would compute differently."""
    model_type = config.get("model_type")
    rule = _RULES.get(model_type)
    if rule is None:
        raise UnsupportedModelError(
            f"unsupported architecture {model_type!r} ({where}); GGUF export supports: {supported_list()}")
    try:
        n_embd = int(config["hidden_size"])
        n_head = int(config["num_attention_heads"])
        spec = ModelSpec(
            model_type=model_type, rule=rule, config=config,
            n_layer=int(config["num_hidden_layers"]), n_embd=n_embd, n_head=n_head,
            n_head_kv=int(config.get("num_key_value_heads") or n_head),
            head_dim=int(config.get("head_dim") or n_embd // n_head),
            n_vocab=int(config["vocab_size"]),
            tied=bool(config.get("tie_word_embeddings", rule.norm_offset > 0)),
            rope=rope_parameters(config))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportInputError(f"{where}: config.json lacks a usable {exc}") from None
    _check_variant(spec)
    return spec


def _check_variant(spec: ModelSpec) -> None:
    """Refuse what llama.cpp would compute differently from transformers for this family."""
    cfg, rope_type = spec.config, spec.rope["rope_type"]
    allowed = {"default", "linear", "llama3"} | ({"longrope", "su"} if spec.model_type == "phi3" else set())
    if rope_type not in allowed:
        raise UnsupportedModelError(f"RoPE scaling {rope_type!r} is not supported for {spec.model_type}")
    if spec.rule.gguf_arch in ("GEMMA2", "GEMMA3"):
        # llama.cpp scales queries by 1/sqrt(head_dim) (1/sqrt(hidden/heads) for the 27B models)
        scalar = cfg.get("query_pre_attn_scalar")
        if scalar is not None and float(scalar) not in (float(spec.head_dim), spec.n_embd / spec.n_head):
            raise UnsupportedModelError(f"query_pre_attn_scalar {scalar} (head_dim {spec.head_dim}) "
                                        "is computed differently by llama.cpp")
        act = cfg.get("hidden_activation") or cfg.get("hidden_act")
        if act not in (None, "gelu_pytorch_tanh", "gelu"):
            raise UnsupportedModelError(f"{spec.model_type} with activation {act!r} is not supported")
    if spec.rule.gguf_arch == "GEMMA3":
        local = rope_parameters(cfg, "sliding_attention")
        if float(local["rope_theta"]) != 10000.0:  # llama.cpp's gemma3 hard-codes the local base
            raise UnsupportedModelError(f"Gemma 3 local RoPE base {local['rope_theta']} (llama.cpp uses 10000)")
        layer_types = cfg.get("layer_types")
        expected = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(spec.n_layer)]
        if layer_types is not None and list(layer_types) != expected:
            raise UnsupportedModelError("Gemma 3 with a local/global layer pattern other than 5:1 "
                                        "is not supported by llama.cpp")
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if cfg.get(key) is not None:
                raise UnsupportedModelError(f"Gemma 3 with {key} is not supported by llama.cpp")
    if spec.model_type == "phi3" and (cfg.get("partial_rotary_factor") or 1.0) != 1.0:
        raise UnsupportedModelError("Phi-3 variants with partial rotary embeddings are not supported")

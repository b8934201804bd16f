"""Tokenizer -> GGUF tokenizer metadata, for byte-level BPE ("gpt2") tokenizers.

Owns everything ``tokenizer.*`` in the GGUF: the token list and token types, the BPE
merges, the pre-tokenizer name llama.cpp should use (``tokenizer.ggml.pre``), the special
token ids (bos/eos/unk/pad and end-of-turn), the add-bos/add-eos flags and the chat
template. The HF tokenizer saved beside the model is the source of truth: it is what the
model was trained with.

SentencePiece tokenizers (llama-2 / mistral-v0.1 style) are not supported yet and raise
``UnsupportedModelError``.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export.errors import UnsupportedModelError

log = logging.getLogger(__name__)

# Split regexes as they appear in tokenizer.json for the two llama.cpp pre-tokenizers that
# use an explicit Split step (followed by ByteLevel without its own regex).
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# End-of-turn markers of common chat formats, most specific first.
_EOT_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


@dataclass
class BpeVocab:
    """What the GGUF needs to know about a byte-level BPE tokenizer."""

    tokens: list[str]
    toktypes: list[int]
    merges: list[str]
    pre: str
    pre_reason: str
    bos_id: int | None = None
    eos_id: int | None = None
    unk_id: int | None = None
    pad_id: int | None = None
    eot_id: int | None = None
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | list[dict[str, str]] | None = None
    special_tokens: dict[str, str] = field(default_factory=dict)

    def add_to_gguf(self, writer: Any) -> None:
        """Write the tokenizer metadata into a ``gguf.GGUFWriter``."""
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.toktypes)
        writer.add_token_merges(self.merges)
        for kind, tid in (("bos", self.bos_id), ("eos", self.eos_id), ("unk", self.unk_id),
                          ("pad", self.pad_id), ("eot", self.eot_id)):
            if tid is not None:
                getattr(writer, f"add_{kind}_token_id")(tid)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def _flatten_pre_tokenizer(node: dict | None) -> list[dict]:
    if not node:
        return []
    if node.get("type") == "Sequence":
        steps: list[dict] = []
        for child in node.get("pretokenizers", []):
            steps.extend(_flatten_pre_tokenizer(child))
        return steps
    return [node]


def _digits_are_atomic(vocab: dict[str, int], added: set[str]) -> bool:
    """True if no ordinary token joins a digit with anything (so splitting digits is a no-op)."""
    return not any(len(tok) > 1 and re.search(r"[0-9]", tok) for tok in vocab if tok not in added)


def detect_pre_tokenizer(tokenizer_json: dict, clean_up_spaces: bool = False,
                         vocab: dict[str, int] | None = None,
                         added: set[str] | None = None) -> tuple[str, str]:
    """Pick the llama.cpp pre-tokenizer (``tokenizer.ggml.pre``) matching an HF tokenizer.

    llama.cpp's own converter fingerprints the tokenizer by hashing its output on a test
    string; here the pre-tokenizer *structure* of the tokenizer (as loaded, serialized to
    tokenizer.json form) is read instead, which also recognises re-saved or re-built
    tokenizers. Returns ``(name, reason)``.

    - ByteLevel with its GPT-2 regex only             -> "gpt-2" ("smollm" if the vocabulary
                                                         keeps every digit on its own, below)
    - Digits(individual) + ByteLevel (SmolLM/SmolLM2) -> "smollm"  (GPT-2 regex, digits split)
    - Split(Llama-3 regex) + ByteLevel(no regex)      -> "llama-bpe"
    - Split(Qwen2 regex) + ByteLevel(no regex)        -> "qwen2"
    - anything else                                   -> "gpt-2", with a warning
    """
    steps = _flatten_pre_tokenizer(tokenizer_json.get("pre_tokenizer"))
    kinds = [s.get("type") for s in steps]

    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        # A vocabulary that never joins a digit with another character was trained with
        # digits split off: that is SmolLM's tokenizer with its Digits step lost (which is
        # what transformers rebuilds from SmolLM2's GGUF). "smollm" then restores the
        # original tokenization; it differs from the GPT-2 regex only for whitespace right
        # before a digit ("\n\n1"), and unlike "gpt-2" it does not remove spaces before
        # punctuation when detokenizing (HF clean_up_tokenization_spaces=False).
        if (vocab is not None and not clean_up_spaces
                and _digits_are_atomic(vocab, added or set())):
            return "smollm", "byte-level GPT-2 regex, single-digit vocabulary, no space clean-up"
        return "gpt-2", "byte-level BPE with the GPT-2 regex"
    if (kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits")
            and steps[1].get("use_regex", True)):
        return "smollm", "individual digits + byte-level GPT-2 regex (SmolLM)"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        regex = (steps[0].get("pattern") or {}).get("Regex")
        if regex == _LLAMA3_SPLIT:
            return "llama-bpe", "Llama-3 split regex"
        if regex == _QWEN2_SPLIT:
            return "qwen2", "Qwen2 split regex"
    # Unknown BPE pre-tokenizer: llama.cpp refuses names it does not know, and "default"
    # uses an unusual regex set; the GPT-2 regex is the byte-level BPE baseline that most
    # such tokenizers extend, so it is the least-wrong choice. Token ids fed directly (as
    # the server and export.verify do) are unaffected; raw-text tokenization may differ.
    log.warning("unrecognised BPE pre-tokenizer %s; writing tokenizer.ggml.pre = 'gpt-2'", kinds)
    return "gpt-2", f"unrecognised pre-tokenizer {kinds}; GPT-2 regex fallback"


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) and value >= 0 else None


def end_of_turn_token(chat_template: Any, vocab_tokens: set[str]) -> str | None:
    """The token that closes a turn in ``chat_template`` (e.g. ``<|im_end|>`` for ChatML)."""
    if isinstance(chat_template, list):
        chat_template = next((t.get("template") for t in chat_template
                              if t.get("name") == "default"), None)
    if not isinstance(chat_template, str):
        return None
    for marker in _EOT_MARKERS:
        if marker in chat_template and marker in vocab_tokens:
            return marker
    return None


_SPM_MESSAGE = ("the tokenizer in {hf_dir} is SentencePiece-style (llama-2 / mistral-v0.1); only "
                "byte-level BPE tokenizers (SmolLM2, Llama 3, Qwen2, ...) can be exported yet")


def _is_sentencepiece(tokenizer_json: dict) -> bool:
    model = tokenizer_json.get("model") or {}
    if model.get("type") not in (None, "BPE"):
        return True  # Unigram / WordPiece / ...
    # llama-2 style fast tokenizers: BPE over "\u2581"-escaped text with byte fallback
    steps = _flatten_pre_tokenizer(tokenizer_json.get("pre_tokenizer"))
    return bool(model.get("byte_fallback")) or any(s.get("type") == "Metaspace" for s in steps)


def _merges(tokenizer_json: dict) -> list[str]:
    """BPE merges as GGUF stores them: "left right" strings. A space inside a part (possible in
    the newer pair format) is shifted to chr(ord(" ") + 256), as gguf.SpecialVocab does."""
    merges = (tokenizer_json.get("model") or {}).get("merges") or []
    out: list[str] = []
    for merge in merges:
        if isinstance(merge, str):
            out.append(merge)
        else:  # ["left", "right"] (tokenizers >= 0.20); parts may contain spaces
            out.append(" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part)
                                for part in merge))
    return out


def read_bpe_vocab(hf_dir: Path | str, n_vocab: int | None = None,
                   config: dict | None = None) -> BpeVocab:
    """Read the tokenizer in ``hf_dir`` as transformers loads it (the fast tokenizer).

    ``n_vocab`` is the model's embedding row count (``config.vocab_size``); ids the tokenizer
    does not use are written as unused ``[PAD<i>]`` tokens, as llama.cpp expects one entry
    per embedding row.
    """
    import gguf
    from transformers import AutoTokenizer

    hf_dir = Path(hf_dir)
    if not (hf_dir / "tokenizer.json").is_file() and (hf_dir / "tokenizer.model").is_file():
        raise UnsupportedModelError(_SPM_MESSAGE.format(hf_dir=hf_dir))
    try:
        tok = AutoTokenizer.from_pretrained(hf_dir)
    except Exception as exc:  # noqa: BLE001 - any loading failure is "no usable tokenizer"
        raise UnsupportedModelError(f"cannot load the tokenizer in {hf_dir}: {exc}") from exc
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedModelError(f"the tokenizer in {hf_dir} has no fast (tokenizers) backend")
    # The *effective* tokenizer, not tokenizer.json: transformers may rebuild parts of it by
    # model type (e.g. Qwen2Tokenizer installs Qwen2's split regex and NFC normalizer).
    tokenizer_json = json.loads(backend.to_str())
    if _is_sentencepiece(tokenizer_json):
        raise UnsupportedModelError(_SPM_MESSAGE.format(hf_dir=hf_dir))
    vocab: dict[str, int] = tok.get_vocab()
    if n_vocab is None:
        n_vocab = max(vocab.values()) + 1
    if max(vocab.values()) >= n_vocab:
        raise UnsupportedModelError(
            f"tokenizer has ids up to {max(vocab.values())} but the model has only {n_vocab} "
            "embedding rows (resize the embeddings before exporting)")

    added = tok.added_tokens_decoder  # id -> AddedToken
    by_id = {i: t for t, i in vocab.items()}
    tokens: list[str] = []
    toktypes: list[int] = []
    for i in range(n_vocab):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            toktypes.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(text)
            looks_special = text.startswith("<|") and text.endswith("|>")
            toktypes.append(gguf.TokenType.CONTROL if added[i].special or looks_special
                            else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(text)
            toktypes.append(gguf.TokenType.NORMAL)

    merges = _merges(tokenizer_json)
    if not merges:
        raise UnsupportedModelError(f"the tokenizer in {hf_dir} has no BPE merges")

    pre, reason = detect_pre_tokenizer(
        tokenizer_json, clean_up_spaces=bool(getattr(tok, "clean_up_tokenization_spaces", False)),
        vocab=vocab, added={t.content for t in added.values()})

    if config is None:
        cfg_path = hf_dir / "config.json"
        config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}

    def special(kind: str) -> int | None:
        tid = getattr(tok, f"{kind}_token_id", None)
        if isinstance(tid, int) and 0 <= tid < n_vocab:
            return tid
        return _first_id(config.get(f"{kind}_token_id"))

    bos_id, eos_id, unk_id, pad_id = (special(k) for k in ("bos", "eos", "unk", "pad"))

    # add_bos / add_eos: observe what the tokenizer really does rather than trusting flags
    probe = tok("a")["input_ids"]
    add_bos = bool(probe) and bos_id is not None and probe[0] == bos_id
    add_eos = bool(probe) and eos_id is not None and probe[-1] == eos_id and len(probe) > 1

    chat_template = getattr(tok, "chat_template", None)
    if isinstance(chat_template, dict):  # several named templates
        chat_template = [{"name": k, "template": v} for k, v in chat_template.items()]
    eot = end_of_turn_token(chat_template, set(vocab))
    eot_id = vocab[eot] if eot is not None else None

    return BpeVocab(
        tokens=tokens, toktypes=[int(t) for t in toktypes], merges=merges, pre=pre,
        pre_reason=reason, bos_id=bos_id, eos_id=eos_id, unk_id=unk_id, pad_id=pad_id,
        eot_id=eot_id, add_bos=add_bos, add_eos=add_eos, chat_template=chat_template,
        special_tokens={k: by_id[v] for k, v in (("bos", bos_id), ("eos", eos_id),
                                                  ("pad", pad_id), ("eot", eot_id))
                        if v is not None and v in by_id},
    )

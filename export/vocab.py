"""Tokenizer -> GGUF tokenizer metadata, for the two tokenizer families of llama-style models.

Owns everything ``tokenizer.*`` in the GGUF: the token list, token types and scores, the BPE
merges, the pre-tokenizer name llama.cpp should use (``tokenizer.ggml.pre``), the special
token ids (bos/eos/unk/pad and end-of-turn), the add-bos/add-eos/add-space-prefix flags and
the chat template. The HF tokenizer saved beside the model is the source of truth: it is what
the model was trained with. ``read_vocab`` picks the family:

- byte-level BPE (SmolLM2, Llama 3, Qwen2, ...): ``tokenizer.ggml.model = "gpt2"`` with the
  merges and a pre-tokenizer name (``_read_bpe``);
- SentencePiece BPE (Llama 2, Mistral 7B v0.1, ...: "\u2581" for spaces, byte-fallback tokens
  ``<0x00>``..``<0xFF>``): ``tokenizer.ggml.model = "llama"`` with per-token scores
  (``_read_spm``). llama.cpp's SentencePiece tokenizer has no merge list: it repeatedly
  joins the adjacent pair whose concatenation is the vocabulary token with the highest score.
  The scores are derived from the HF tokenizer's merge ranks (a token made by an earlier merge
  scores higher), which reproduces the HF tokenization for tokenizers converted from a
  SentencePiece model (their merge list holds every split of every piece, ordered by the
  piece's SentencePiece score, so the original scores' order is kept).

- SentencePiece Unigram (T5-style vocabularies of scored pieces): ``tokenizer.ggml.model =
  "t5"``, llama.cpp's Unigram tokenizer (Viterbi over the piece scores, as HF's), with the
  normalizer's precompiled character map when there is one (``read_vocab`` -> ``_read_unigram``).
  Known differences: a text that already starts with a space gets a second "\u2581" in
  llama.cpp, letters missing from the vocabulary become ``<unk>`` rather than byte tokens, and
  two equally scored segmentations may be told apart differently (the parity check reports
  such probes; ids fed directly, as the server and the check do, are unaffected).

WordPiece and other tokenizers raise ``UnsupportedModelError``.
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
class TokenizerVocab:
    """What the GGUF needs to know about a tokenizer (``tokenizer.*`` keys)."""

    model: str                         # tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    tokens: list[str]
    toktypes: list[int]
    merges: list[str] = field(default_factory=list)   # "gpt2" only
    scores: list[float] | None = None  # "llama" only
    pre: str = "default"               # tokenizer.ggml.pre
    pre_reason: str = ""
    bos_id: int | None = None
    eos_id: int | None = None
    unk_id: int | None = None
    pad_id: int | None = None
    eot_id: int | None = None
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None  # "llama"/"t5": prepend "\u2581" to the text (SentencePiece's dummy prefix)
    remove_extra_whitespaces: bool | None = None  # "t5": collapse runs of spaces first
    precompiled_charsmap: bytes | None = None     # "t5": SentencePiece's normalization table
    chat_template: str | list[dict[str, str]] | None = None
    special_tokens: dict[str, str] = field(default_factory=dict)

    def add_to_gguf(self, writer: Any) -> None:
        """Write the tokenizer metadata into a ``gguf.GGUFWriter``."""
        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.toktypes)
        if self.merges:
            writer.add_token_merges(self.merges)
        for kind, tid in (("bos", self.bos_id), ("eos", self.eos_id), ("unk", self.unk_id),
                          ("pad", self.pad_id), ("eot", self.eot_id)):
            if tid is not None:
                getattr(writer, f"add_{kind}_token_id")(tid)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)
        if self.remove_extra_whitespaces is not None:
            writer.add_remove_extra_whitespaces(self.remove_extra_whitespaces)
        if self.precompiled_charsmap:
            writer.add_precompiled_charsmap(self.precompiled_charsmap)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


BpeVocab = TokenizerVocab  # the name this class had when only byte-level BPE was supported


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


_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def tokenizer_family(tokenizer_json: dict) -> str:
    """ "gpt2" (byte-level BPE), "llama" (SentencePiece BPE), "t5" (SentencePiece Unigram) or
    "unsupported: <why>"."""
    model = tokenizer_json.get("model") or {}
    mtype = model.get("type") or "BPE"
    if mtype == "Unigram":
        return "t5"
    if mtype != "BPE":
        return (f"unsupported: a {mtype} tokenizer model (BPE tokenizers, byte-level or "
                "SentencePiece-style, and SentencePiece Unigram ones can be exported)")
    kinds = [s.get("type") for s in _flatten_pre_tokenizer(tokenizer_json.get("pre_tokenizer"))]
    if "ByteLevel" in kinds:
        return "gpt2"
    # Llama-2 style: Metaspace pre-tokenizer (newer tokenizer.json) or a normalizer that turns
    # spaces into "\u2581" (older ones), with byte-fallback tokens instead of byte-level ones.
    normalizer = json.dumps(tokenizer_json.get("normalizer") or {}, ensure_ascii=False)
    if "Metaspace" in kinds or "\u2581" in normalizer or model.get("byte_fallback"):
        return "llama"
    return "gpt2"


def _load_tokenizer(hf_dir: Path):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(hf_dir)
    except Exception as exc:  # noqa: BLE001 - any loading failure is "no usable tokenizer"
        hint = ""
        if not (hf_dir / "tokenizer.json").is_file() and (hf_dir / "tokenizer.model").is_file():
            hint = " (only a SentencePiece tokenizer.model is there: `pip install sentencepiece` lets transformers convert it)"
        raise UnsupportedModelError(f"cannot load the tokenizer in {hf_dir}: {exc}{hint}") from exc
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedModelError(f"the tokenizer in {hf_dir} has no fast (tokenizers) backend")
    # The *effective* tokenizer, not tokenizer.json: transformers may rebuild parts of it by
    # model type (e.g. Qwen2Tokenizer installs Qwen2's split regex and NFC normalizer).
    return tok, json.loads(backend.to_str())


def read_vocab(hf_dir: Path | str, n_vocab: int | None = None,
               config: dict | None = None) -> TokenizerVocab:
    """Read the tokenizer in ``hf_dir`` (byte-level BPE or SentencePiece) for the GGUF.

    ``n_vocab`` is the model's embedding row count (``config.vocab_size``); ids the tokenizer
    does not use are written as unused ``[PAD<i>]`` tokens, as llama.cpp expects one entry
    per embedding row.
    """
    hf_dir = Path(hf_dir)
    tok, tokenizer_json = _load_tokenizer(hf_dir)
    family = tokenizer_family(tokenizer_json)
    if family.startswith("unsupported"):
        raise UnsupportedModelError(f"the tokenizer in {hf_dir} is {family.split(': ', 1)[1]}")
    if family == "llama":
        return _read_spm(hf_dir, tok, tokenizer_json, n_vocab, config)
    if family == "t5":
        return _read_unigram(hf_dir, tok, tokenizer_json, n_vocab, config)
    return _read_bpe(hf_dir, tok, tokenizer_json, n_vocab, config)


def _special_vocab(hf_dir: Path, n_vocab: int) -> Any:
    """gguf-py's own reader of what llama.cpp's converter takes from the tokenizer files: the BPE
    merges (as "left right" strings, spaces inside a part shifted as llama.cpp expects), the
    special token ids of tokenizer_config.json / config.json, and the chat template."""
    import gguf

    return gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=n_vocab,
                             special_token_types=("bos", "eos", "unk", "pad"))


def _merge_pairs(tokenizer_json: dict) -> list[tuple[str, str]]:
    merges = (tokenizer_json.get("model") or {}).get("merges") or []
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in merges]


def _check_size(vocab: dict[str, int], n_vocab: int | None) -> int:
    if n_vocab is None:
        n_vocab = max(vocab.values()) + 1
    if max(vocab.values()) >= n_vocab:
        raise UnsupportedModelError(
            f"tokenizer has ids up to {max(vocab.values())} but the model has only {n_vocab} "
            "embedding rows (resize the embeddings before exporting)")
    return n_vocab


def _token_table(vocab: dict[str, int], n_vocab: int, token_type) -> tuple[dict[int, str], list[str], list[int]]:
    """One entry per embedding row: (id -> text, token texts, token types). Rows the tokenizer
    does not use become ``[PAD<i>]`` of type UNUSED; ``token_type(i, text)`` types the rest."""
    import gguf

    by_id = {i: t for t, i in vocab.items()}
    tokens: list[str] = []
    toktypes: list[int] = []
    for i in range(n_vocab):
        text = by_id.get(i)
        tokens.append(f"[PAD{i}]" if text is None else text)
        toktypes.append(int(gguf.TokenType.UNUSED if text is None else token_type(i, text)))
    return by_id, tokens, toktypes


def _specials(tok, vocab: dict[str, int], by_id: dict[int, str], n_vocab: int,
              config: dict, files: Any) -> dict[str, Any]:
    """Special token ids, add-bos/eos behaviour and chat template (shared by every family).

    ``files`` is :func:`_special_vocab`'s reading of the tokenizer files; where it names no id
    (tokenizers saved without a tokenizer_config.json), the loaded tokenizer's and then the
    model config's are used."""

    def special(kind: str) -> int | None:
        tid = files.special_token_ids.get(kind)
        if isinstance(tid, int) and 0 <= tid < n_vocab:
            return tid
        tid = getattr(tok, f"{kind}_token_id", None)
        if isinstance(tid, int) and 0 <= tid < n_vocab:
            return tid
        return _first_id(config.get(f"{kind}_token_id"))

    bos_id, eos_id, unk_id, pad_id = (special(k) for k in ("bos", "eos", "unk", "pad"))

    # add_bos / add_eos: observe what the tokenizer really does rather than trusting flags
    # (SpecialVocab reads the flags, which many tokenizer_config.json files leave out or get wrong)
    probe = tok("a")["input_ids"]
    add_bos = bool(probe) and bos_id is not None and probe[0] == bos_id
    add_eos = bool(probe) and eos_id is not None and probe[-1] == eos_id and len(probe) > 1

    chat_template = files.chat_template or getattr(tok, "chat_template", None)
    if isinstance(chat_template, dict):  # several named templates
        chat_template = [{"name": k, "template": v} for k, v in chat_template.items()]
    eot = end_of_turn_token(chat_template, set(vocab))
    eot_id = vocab[eot] if eot is not None else None
    return dict(
        bos_id=bos_id, eos_id=eos_id, unk_id=unk_id, pad_id=pad_id, eot_id=eot_id,
        add_bos=add_bos, add_eos=add_eos, chat_template=chat_template,
        special_tokens={k: by_id[v] for k, v in (("bos", bos_id), ("eos", eos_id),
                                                  ("pad", pad_id), ("eot", eot_id))
                        if v is not None and v in by_id},
    )


def _read_config(hf_dir: Path, config: dict | None) -> dict:
    if config is None:
        cfg_path = hf_dir / "config.json"
        config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    return config


def _read_bpe(hf_dir: Path, tok, tokenizer_json: dict, n_vocab: int | None,
              config: dict | None) -> TokenizerVocab:
    import gguf

    vocab: dict[str, int] = tok.get_vocab()
    n_vocab = _check_size(vocab, n_vocab)

    added = tok.added_tokens_decoder  # id -> AddedToken

    def token_type(i: int, text: str) -> int:
        if i in added:
            looks_special = text.startswith("<|") and text.endswith("|>")
            return gguf.TokenType.CONTROL if added[i].special or looks_special else gguf.TokenType.USER_DEFINED
        return gguf.TokenType.NORMAL

    by_id, tokens, toktypes = _token_table(vocab, n_vocab, token_type)

    files = _special_vocab(hf_dir, n_vocab)
    merges = files.merges
    if not merges:
        raise UnsupportedModelError(f"the tokenizer in {hf_dir} has no BPE merges")

    pre, reason = detect_pre_tokenizer(
        tokenizer_json, clean_up_spaces=bool(getattr(tok, "clean_up_tokenization_spaces", False)),
        vocab=vocab, added={t.content for t in added.values()})

    return TokenizerVocab(
        model="gpt2", tokens=tokens, toktypes=[int(t) for t in toktypes], merges=merges, pre=pre,
        pre_reason=reason, **_specials(tok, vocab, by_id, n_vocab, _read_config(hf_dir, config), files))


def spm_scores(vocab: dict[str, int], merges: list[tuple[str, str]], n_vocab: int) -> list[float]:
    """Per-token scores for llama.cpp's SentencePiece tokenizer, from the HF merge ranks.

    A token made by merge number ``r`` (its first appearance as a merge result) scores ``-r``,
    so llama.cpp, which joins the pair forming the highest-scoring token first, merges in the
    HF order. Tokens no merge makes score 0 if llama.cpp can never form them from a pair (single
    characters, byte tokens, specials: only multi-character results are looked up), and below
    every merge otherwise, so that llama.cpp forms them only when nothing else applies.
    """
    rank: dict[str, int] = {}
    for i, (left, right) in enumerate(merges):
        rank.setdefault(left + right, i)
    floor = -float(len(merges) + 1)
    scores = [0.0] * n_vocab
    for text, i in vocab.items():
        if i >= n_vocab:
            continue
        if text in rank:
            scores[i] = -float(rank[text])
        elif len(text) > 1 and not _BYTE_TOKEN.fullmatch(text):
            scores[i] = floor
    return scores


def _read_spm(hf_dir: Path, tok, tokenizer_json: dict, n_vocab: int | None,
              config: dict | None) -> TokenizerVocab:
    vocab: dict[str, int] = tok.get_vocab()
    n_vocab = _check_size(vocab, n_vocab)
    model = tokenizer_json.get("model") or {}
    merges = _merge_pairs(tokenizer_json)
    if not merges:
        raise UnsupportedModelError(f"the SentencePiece-style tokenizer in {hf_dir} has no BPE merges")
    byte_fallback = bool(model.get("byte_fallback"))
    if not byte_fallback:
        log.warning("SentencePiece-style tokenizer without byte fallback: llama.cpp may split "
                    "characters outside the vocabulary differently")

    added = tok.added_tokens_decoder  # id -> AddedToken
    unk_token = model.get("unk_token") or getattr(tok, "unk_token", None)

    token_type = _sentencepiece_token_type(added, unk_token, byte_fallback)
    by_id, tokens, toktypes = _token_table(vocab, n_vocab, token_type)

    # SentencePiece's dummy prefix: does "a" come out as "\u2581a"?
    first = tok.convert_ids_to_tokens(tok("a", add_special_tokens=False)["input_ids"][:1])
    add_space_prefix = bool(first) and str(first[0]).startswith("\u2581")

    return TokenizerVocab(
        model="llama", tokens=tokens, toktypes=[int(t) for t in toktypes],
        scores=spm_scores(vocab, merges, n_vocab), pre="default",
        pre_reason="SentencePiece (scores from the merge ranks)", add_space_prefix=add_space_prefix,
        **_specials(tok, vocab, by_id, n_vocab, _read_config(hf_dir, config),
                    _special_vocab(hf_dir, n_vocab)))


def _sentencepiece_token_type(added: dict, unk_token: str | None, byte_fallback: bool):
    """The GGUF token type of (id, text) in a SentencePiece-style vocabulary (BPE or Unigram)."""
    import gguf

    def token_type(i: int, text: str) -> int:
        if text == unk_token:
            return gguf.TokenType.UNKNOWN
        if i in added:
            return gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED
        if byte_fallback and _BYTE_TOKEN.fullmatch(text):
            return gguf.TokenType.BYTE
        return gguf.TokenType.NORMAL
    return token_type


def _normalizers(tokenizer_json: dict) -> list[dict]:
    node = tokenizer_json.get("normalizer") or {}
    return list(node.get("normalizers") or []) if node.get("type") == "Sequence" else ([node] if node else [])


def _read_unigram(hf_dir: Path, tok, tokenizer_json: dict, n_vocab: int | None,
                  config: dict | None) -> TokenizerVocab:
    import base64

    vocab: dict[str, int] = tok.get_vocab()
    n_vocab = _check_size(vocab, n_vocab)
    model = tokenizer_json.get("model") or {}
    pieces = model.get("vocab") or []
    piece_score = {piece: float(score) for piece, score in pieces}
    unk_id = model.get("unk_id")
    unk_token = pieces[unk_id][0] if isinstance(unk_id, int) and unk_id < len(pieces) else None
    byte_fallback = bool(model.get("byte_fallback"))
    added = tok.added_tokens_decoder

    token_type = _sentencepiece_token_type(added, unk_token, byte_fallback)
    by_id, tokens, toktypes = _token_table(vocab, n_vocab, token_type)
    scores = [piece_score.get(by_id.get(i, ""), 0.0) for i in range(n_vocab)]

    charsmap = None
    collapse = False
    for step in _normalizers(tokenizer_json):
        if step.get("type") == "Precompiled" and step.get("precompiled_charsmap"):
            charsmap = base64.b64decode(step["precompiled_charsmap"])
        if step.get("type") == "Replace" and (step.get("pattern") or {}).get("Regex") in (" {2,}", "\\s+"):
            collapse = True
    first = tok.convert_ids_to_tokens(tok("a", add_special_tokens=False)["input_ids"][:1])
    add_space_prefix = bool(first) and str(first[0]).startswith("\u2581")
    return TokenizerVocab(
        model="t5", tokens=tokens, toktypes=[int(t) for t in toktypes], scores=scores, pre="default",
        pre_reason="SentencePiece Unigram (piece scores)", add_space_prefix=add_space_prefix,
        remove_extra_whitespaces=collapse, precompiled_charsmap=charsmap,
        **_specials(tok, vocab, by_id, n_vocab, _read_config(hf_dir, config),
                    _special_vocab(hf_dir, n_vocab)))

"""How far the twin's replies can be told apart from the person's own: the figures of ``twin eval``.

Everything here works on plain reply texts (the terminator already cut off), so it is the same
for replies generated in ``twin eval``, during training on the valid split, or collected from a
server:

- :func:`style`: per-reply style rates (length, `` | `` rate, lowercase, emoji, punctuation,
  vocabulary richness) and :func:`style_ratios`, each as twin/real;
- :func:`loops` / :func:`loop_rate`: replies that repeat one of their messages or a run of words;
- :func:`classifier_accuracy`: a character n-gram classifier (scikit-learn's TF-IDF + logistic
  regression), cross-validated, trying to tell real replies from the twin's replies to the same
  prompts: 0.5 means it cannot (the goal), 1.0 that it always can;
- :func:`sounds_like_you`: the headline score drawn from that accuracy, 0-100;
- :func:`wilson_interval`: the confidence interval of a share (the "Can you tell?" results).
"""
from __future__ import annotations

import math
import re
from collections import Counter

from core.terminator import MESSAGE_SEPARATOR, split_messages
from dataprocess.clean import EMOJI_RE

_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
_PUNCT_RE = re.compile(r"[.,!?;:]")
# The same chunk of at least 5 characters three times in a row: a loop even without spaces.
_CHAR_RUN_RE = re.compile(r"(.{5,}?)\1\1", re.DOTALL)
LOOP_NGRAM = 3   # a word n-gram of this length seen twice in one reply is a loop

STYLE_KEYS = ("mean_chars", "separator_rate", "lowercase_rate", "emoji_rate", "punctuation_rate",
              "vocabulary_richness")
# The rates whose twin/real ratio the goals bound (within 10% of the person's).
GOAL_KEYS = ("mean_chars", "separator_rate", "lowercase_rate")

HEADLINE_MEANING = ("'sounds like you' is 100 when a character n-gram classifier cannot tell the twin's replies "
                    "from yours better than chance (50% accuracy) and 0 when it always can; "
                    "it is 200 x (1 - accuracy), capped to 0-100")


def _richness(texts: list[str]) -> float:
    words = [w for t in texts for w in _WORD_RE.findall(t.lower())]
    return len(set(words)) / len(words) if words else 0.0


def style(texts: list[str], richness_size: int | None = None) -> dict:
    """Style figures of a list of replies (each rate is a share of replies, except where said).

    Vocabulary richness (distinct words per word) falls as more text is counted, so two lists
    of replies are only comparable at one size: with ``richness_size``, it is the mean over
    consecutive chunks of that many replies (the person's hundreds of replies measured at the
    size of the twin's sample)."""
    n = max(len(texts), 1)
    size = richness_size if richness_size and richness_size < len(texts) else len(texts)
    chunks = [texts[i:i + size] for i in range(0, len(texts) - size + 1, size)] if size else []
    return {
        "mean_chars": round(sum(len(t) for t in texts) / n, 2),
        "separator_rate": round(sum(MESSAGE_SEPARATOR.strip() in t for t in texts) / n, 4),
        "lowercase_rate": round(sum(t == t.lower() for t in texts) / n, 4),
        "emoji_rate": round(sum(bool(EMOJI_RE.search(t)) for t in texts) / n, 4),
        "punctuation_rate": round(sum(bool(_PUNCT_RE.search(t)) for t in texts) / n, 4),
        # distinct words per word used: how varied the vocabulary is
        "vocabulary_richness": round(sum(map(_richness, chunks)) / len(chunks), 4) if chunks else 0.0,
    }


def style_ratios(twin: dict, real: dict) -> dict:
    """Each style figure as twin/real (None where the person's figure is 0)."""
    return {k: (round(twin[k] / real[k], 4) if real.get(k) else None) for k in STYLE_KEYS}


def vocabulary_overlap(generated: list[str], real: list[str]) -> float:
    """Share of the generated words that the person also uses in the real replies."""
    vocab = {w for t in real for w in _WORD_RE.findall(t.lower())}
    words = [w for t in generated for w in _WORD_RE.findall(t.lower())]
    return round(sum(w in vocab for w in words) / len(words), 4) if words else 0.0


def loops(text: str) -> bool:
    """Whether a reply repeats itself: one of its messages twice (``i'm coming | i'm coming``), a
    word n-gram twice, or a chunk of characters three times in a row."""
    messages = [m.lower() for m in split_messages(text)]
    if len(messages) != len(set(messages)):
        return True
    tokens = _TOKEN_RE.findall(text.lower())
    grams = Counter(tuple(tokens[i:i + LOOP_NGRAM]) for i in range(len(tokens) - LOOP_NGRAM + 1))
    if grams and max(grams.values()) > 1:
        return True
    return bool(_CHAR_RUN_RE.search(text))


def loop_rate(texts: list[str]) -> float:
    return round(sum(loops(t) for t in texts) / len(texts), 4) if texts else 0.0


def empty_rate(texts: list[str]) -> float:
    return round(sum(not split_messages(t) for t in texts) / len(texts), 4) if texts else 0.0


def classifier_accuracy(real: list[str], twin: list[str], folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a classifier telling ``real`` replies from ``twin`` ones.

    ``real[i]`` and ``twin[i]`` answer the same prompt; both stay in the same fold (grouped by
    prompt), so the classifier is always tested on prompts it has not seen. Character n-grams
    (1-4, within words, TF-IDF) catch spelling, case, punctuation, separators and length; the
    model is a logistic regression. Returns ``accuracy`` (None with fewer than 4 pairs), the
    per-fold figures and the number of pairs.
    """
    pairs = min(len(real), len(twin))
    if pairs < 4:
        return {"accuracy": None, "pairs": pairs, "folds": [], "note": "too few replies to cross-validate"}
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    # An empty reply would give an all-zero row: the classifier still sees it as a pattern of its own.
    texts = list(real[:pairs]) + list(twin[:pairs])
    labels = np.array([0] * pairs + [1] * pairs)
    groups = np.array(list(range(pairs)) * 2)
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, lowercase=False),
                          LogisticRegression(max_iter=2000, random_state=seed))
    splitter = GroupKFold(n_splits=min(folds, pairs))
    try:
        scores = cross_val_score(model, texts, labels, groups=groups, cv=splitter, scoring="accuracy",
                                 error_score="raise")
    except ValueError:  # no character at all in a fold's replies (all empty): nothing to learn from
        return {"accuracy": None, "pairs": pairs, "folds": [], "note": "replies too empty to classify"}
    return {"accuracy": round(float(scores.mean()), 4), "pairs": pairs,
            "folds": [round(float(s), 4) for s in scores]}


def classifier_over_rounds(real: list[str], twin: list[str], seed: int = 0) -> dict:
    """:func:`classifier_accuracy` of each round of ``twin`` (replies to the prompts of ``real``,
    round after round) against ``real``, the accuracy averaged over the rounds (``rounds``: each
    one's); the folds and pairs are the first round's."""
    size = len(real)
    per_round = [classifier_accuracy(real, twin[i:i + size], seed=seed) for i in range(0, len(twin), size)] if size else []
    result = dict(per_round[0]) if per_round else classifier_accuracy(real, [], seed=seed)
    scored = [c["accuracy"] for c in per_round if c["accuracy"] is not None]
    if scored:
        result.update(accuracy=round(sum(scored) / len(scored), 4), rounds=scored)
    return result


def sounds_like_you(accuracy: float | None) -> int | None:
    """The headline score (see :data:`HEADLINE_MEANING`): 100 at chance accuracy, 0 when the
    classifier is always right. Accuracy below chance is noise around it and counts as 100."""
    if accuracy is None:
        return None
    return int(round(100 * min(1.0, max(0.0, 2.0 * (1.0 - accuracy)))))


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval (95% by default) of the share ``successes / total``."""
    if total <= 0:
        return None
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


MIN_TERMINATION = 0.98   # replies that end on their own
MAX_LOOPS = 0.02         # replies that repeat a message or an n-gram


def within_limits(figures: dict) -> bool:
    """Whether replies end on their own, do not loop and are never empty, as a twin must."""
    return (figures.get("termination_rate", 1.0) >= MIN_TERMINATION and figures.get("loop_rate", 0.0) <= MAX_LOOPS
            and not figures.get("empty_rate", 0.0))


def fidelity_penalty(figures: dict) -> float:
    """One number to minimise when choosing decoding settings or an adapter: the classifier's
    margin above chance, the share of replies that do not end or loop or are empty, and how far
    the goal style rates are from the person's (mean |log ratio|). 0 is a perfect twin."""
    accuracy = figures.get("classifier_accuracy")
    margin = 2 * max(0.0, accuracy - 0.5) if accuracy is not None else 0.0
    ratios = [r for k, r in (figures.get("ratios") or {}).items() if k in GOAL_KEYS and r is not None]
    drift = sum(abs(math.log(max(r, 1e-3))) for r in ratios) / len(ratios) if ratios else 0.0
    return round(margin + (1 - figures.get("termination_rate", 1.0)) + figures.get("loop_rate", 0.0)
                 + figures.get("empty_rate", 0.0) + drift, 4)

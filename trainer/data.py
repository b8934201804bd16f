"""The training data as the trainer sees it: WORKSPACE/data splits, fitted to ``--max-length``.

The splits are read by ``dataprocess.splits.read_split``; each example becomes TRL's
conversational prompt-completion pair (``prompt``: system line and the earlier turns,
``completion``: my reply, its terminator left to the chat template's end-of-turn token:
``dataprocess.splits.Example.training_record``). An example longer than ``max_length`` tokens
loses its oldest context turns until it fits (the system line and the last turn before the reply
stay), rather than being cut at the end as TRL's truncation would do, which would drop the
reply's end-of-turn token, the very thing that teaches the twin to stop. One that still does not
fit is left out. Both are counted in the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.workspace import Workspace
from dataprocess.splits import read_split

from .errors import TrainingInputError


@dataclass
class FitReport:
    kept: int = 0
    shortened: int = 0
    dropped: int = 0


def load_split(workspace: Workspace, split: str, path: Path | None = None) -> list[dict] | None:
    """The training records of ``split`` (None if the file is absent or empty, except for train,
    which must be there: "run `twin process` first"); ``path``: read that file instead (`twin update`)."""
    if split == "train" and path is None:
        workspace.require_data(split)  # a missing workspace or split: "run `twin process` first"
    examples = read_split(path or workspace.split_path(split), required=split == "train", error=TrainingInputError)
    return [example.training_record() for example in examples] or None


def _length(tokenizer, messages: list[dict]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_to_length(rows: list[dict], tokenizer, max_length: int | None) -> tuple[list[dict], FitReport]:
    """Drop the oldest context turns of examples longer than ``max_length`` tokens (see the
    module docstring); returns the rows to train on and what was done."""
    report = FitReport()
    if not max_length:
        report.kept = len(rows)
        return rows, report
    out = []
    for row in rows:
        prompt, completion = row["prompt"], row["completion"]
        if _length(tokenizer, prompt + completion) <= max_length:
            out.append(row)
            continue
        # keep the system line (if any) and the turn right before the reply
        head = 1 if prompt and prompt[0].get("role") == "system" else 0
        while len(prompt) > head + 1 and _length(tokenizer, prompt + completion) > max_length:
            prompt = prompt[:head] + prompt[head + 1:]
        if _length(tokenizer, prompt + completion) <= max_length:
            out.append({"prompt": prompt, "completion": completion})
            report.shortened += 1
        else:
            report.dropped += 1
    report.kept = len(out)
    return out, report

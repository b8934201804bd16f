"""The split files read back: one function (:func:`read_split`), one typed record (:class:`Example`).

``twin process`` writes WORKSPACE/data/{train,valid,test}.jsonl (``dataprocess.examples``:
TRL's conversational prompt-completion records plus ``conversation``, ``source`` and ``contact``). Every
later stage reads them here: training (``trainer.data``), ``twin eval`` (its prompts, the real
replies, the person's habit) and the server's "Can you tell?" game. A line that is not such a
record stops the reader with ``file:line``: a split file is written by twin, so a broken line
means a damaged workspace, not one odd message to skip.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.terminator import strip_terminator, training_reply


class SplitError(InputError):
    """A split file is missing, empty or not prompt/completion records (exit 2)."""


@dataclass(frozen=True)
class Example:
    """One line of a split file."""

    prompt: tuple[dict, ...]     # system line, earlier turns, the contact's turn (chat messages)
    completion: str              # the reply as the data file holds it, ending with `` DONE``
    conversation: str = ""
    source: str = "chat"         # "chat", or "facts" for a fact's question/answer
    line: int = 0                # line number in its file
    contact: str = ""            # who the reply was written to (the chat's name), when known

    @property
    def reply(self) -> str:
        """What the person wrote (the terminator cut off)."""
        return strip_terminator(self.completion)

    @property
    def incoming(self) -> str:
        """The contact's turn the reply answers."""
        return self.prompt[-1]["content"] if self.prompt else ""

    def messages(self) -> list[dict]:
        """The prompt as a fresh list of chat messages (safe to change)."""
        return [dict(m) for m in self.prompt]

    def training_record(self) -> dict:
        """TRL's prompt-completion record as the model is trained on it: the reply without the
        terminator, which the chat template's end-of-turn token takes the place of
        (``core.terminator.training_reply``)."""
        return {"prompt": self.messages(),
                "completion": [{"role": "assistant", "content": training_reply(self.completion)}]}


def _example(record: dict, number: int) -> Example:
    prompt = tuple(dict(m) for m in record["prompt"])
    completion = record["completion"][0]["content"]
    if not isinstance(completion, str) or not all(isinstance(m.get("content"), str) for m in prompt):
        raise TypeError("not text")
    return Example(prompt, completion, str(record.get("conversation", "")), str(record.get("source", "chat")),
                   number, str(record.get("contact") or ""))


def read_split(path: Path | str, *, required: bool = True, error: type[InputError] = SplitError) -> list[Example]:
    """Every example of one split file, in file order.

    ``required``: a missing or empty file is an ``error`` ("run `twin process`"); else it reads
    as no examples. A broken line is an ``error`` too (a stage passes its own error class)."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise error(f"no {path}: run `twin process EXPORT... --workspace {path.parent.parent}` first")
        return []
    examples = []
    with open(path, encoding="utf-8", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    examples.append(_example(json.loads(line), number))
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    raise error(f"{path}:{number}: not a prompt/completion record") from None
        except UnicodeDecodeError:
            raise error(f"{path} is not UTF-8 text: run `twin process` again") from None
    if required and not examples:
        raise error(f"{path} holds no examples")
    return examples

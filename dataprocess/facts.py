""""Facts about me" file -> synthetic question/answer examples, so the twin knows who it is.

The file is TOML::

    [me]
    name = "maya"
    hometown = "duluth, minnesota"

    [[qa]]
    questions = ["what's your dog's name?"]
    answer = "pickle!!"

Known ``[me]`` keys get built-in questions; ``[[qa]]`` entries are used as written.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import ChatExportError

_QUESTIONS = {
    "name": (["what's your name?", "who is this?", "what should i call you?"], "{value}"),
    "hometown": (["where are you from?", "where did you grow up?"], "{value}"),
    "lives": (["where do you live?", "where are you living these days?"], "{value}"),
    "job": (["what do you do?", "what's your job?", "where do you work?"], "{value}"),
    "age": (["how old are you?"], "{value}"),
}


@dataclass(frozen=True)
class FactQA:
    question: str
    answer: str


@dataclass(frozen=True)
class Facts:
    me: dict
    qa: list[FactQA]

    @property
    def name(self) -> str | None:
        return self.me.get("name")


def load_facts(path: Path) -> Facts:
    """Parse a facts file; ChatExportError with the reason when it is not valid."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChatExportError(f"{path}: facts file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChatExportError(f"{path}: not a valid facts file ({exc})") from None
    me = {str(k): str(v) for k, v in data.get("me", {}).items()}
    qa: list[FactQA] = []
    for key, value in me.items():
        questions, answer = _QUESTIONS.get(key, ([f"what's your {key.replace('_', ' ')}?"], "{value}"))
        qa.extend(FactQA(q, answer.format(value=value)) for q in questions)
    for number, entry in enumerate(data.get("qa", []), 1):
        questions, answer = entry.get("questions"), entry.get("answer")
        if not isinstance(questions, list) or not isinstance(answer, str) or not questions:
            raise ChatExportError(f"{path}: [[qa]] entry {number} needs 'questions' (a list) and 'answer' (a string)")
        qa.extend(FactQA(str(q), answer) for q in questions)
    return Facts(me=me, qa=qa)

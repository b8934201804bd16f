""""Facts about me" file -> synthetic question/answer examples, so the twin knows who it is.

The file is TOML::

    declines = ["idk lol", "no clue"]   # optional, before any table: how you say "i don't know"

    [me]
    name = "maya"
    hometown = "duluth, minnesota"

    [[qa]]
    questions = ["what's your dog's name?"]
    answer = "pickle!!"

    [[check]]                       # held out: twin eval's fact accuracy
    question = "whats ur dogs name"
    answer = ["pickle"]             # a reply holding any of these is right

    [[unknown]]                     # held out: questions no fact answers (invented answers)
    questions = ["whats ur favorite movie"]

Known ``[me]`` keys get built-in questions; ``[[qa]]`` entries are used as written. ``[[check]]``
and ``[[unknown]]`` are never trained on: ``twin process`` keeps them in
``data/fact_checks.json`` for ``twin eval`` (:data:`CHECKS_FILE`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomllib

from .errors import ChatExportError

_QUESTIONS = {
    "name": (["what's your name?", "who is this?", "what should i call you?"], "{value}"),
    "hometown": (["where are you from?", "where did you grow up?"], "{value}"),
    "lives": (["where do you live?", "where are you living these days?"], "{value}"),
    "job": (["what do you do?", "what's your job?", "where do you work?"], "{value}"),
    "age": (["how old are you?"], "{value}"),
}

# Words a friend asks about a known ``[me]`` key with that its value need not hold: "what kind of
# dog is she" is about ``pet = "pickle, my corgi mix"``, "where do ur parents live" about
# ``family = "my mom and dad in duluth"``. The knowledge base finds a ``[me]`` line by these words
# too (never shows them). A short list per key, as with the built-in questions above: no
# maintained library joins a key to how people ask about it (WordNet-style synonym lists relate
# words, not topics, and need a corpus download).
ASKED_WITH = {
    "name": "called",
    "full_name": "last name surname",
    "hometown": "from grew up born home",
    "lives": "live living city town neighborhood area moved",
    "job": "work job career office boss",
    "age": "old years",
    "birthday": "born birthday",
    "pet": "pets dog cat animal",
    "hobbies": "fun free time weekends hobby",
    "favorite_food": "food eat dinner lunch",
    "family": "parents mom dad mother father siblings sister brother",
}


@dataclass(frozen=True)
class FactQA:
    question: str
    answer: str


CHECKS_FILE = "fact_checks.json"


@dataclass(frozen=True)
class FactCheck:
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    me: dict
    qa: list[FactQA]
    checks: tuple[FactCheck, ...] = ()
    unknown: tuple[str, ...] = ()
    declines: tuple[str, ...] = ()   # how the person says "i don't know" (dataprocess.declines)

    def checks_json(self) -> str:
        """What ``twin eval`` asks (``data/fact_checks.json``)."""
        import json

        return json.dumps({"checks": [{"question": c.question, "answers": list(c.answers)} for c in self.checks],
                           "unknown": list(self.unknown)}, ensure_ascii=False, indent=2)

    @property
    def name(self) -> str | None:
        return self.me.get("name")


def read_toml(path: Path, what: str) -> dict:
    """A user's TOML file (``what``: "facts file", ...); ChatExportError with the reason when it
    is missing, a folder or not valid TOML."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChatExportError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ChatExportError(f"{path}: a folder, not a {what}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChatExportError(f"{path}: not a valid {what} ({exc})") from None


def load_facts(path: Path) -> Facts:
    """Parse a facts file; ChatExportError with the reason when it is not valid."""
    data = read_toml(path, "facts file")
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
    checks = []
    for number, entry in enumerate(data.get("check", []), 1):
        question, answers = entry.get("question"), entry.get("answer")
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(question, str) or not isinstance(answers, list) or not answers \
                or not all(isinstance(a, str) and a.strip() for a in answers):
            raise ChatExportError(f"{path}: [[check]] entry {number} needs 'question' (a string) and "
                                  "'answer' (a string or a list of them)")
        checks.append(FactCheck(question, tuple(answers)))
    unknown = []
    for number, entry in enumerate(data.get("unknown", []), 1):
        questions = entry.get("questions")
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise ChatExportError(f"{path}: [[unknown]] entry {number} needs 'questions' (a list of strings)")
        unknown.extend(questions)
    declines = data.get("declines", [])
    if not isinstance(declines, list) or not all(isinstance(d, str) and d.strip() for d in declines):
        raise ChatExportError(f"{path}: 'declines' must be a list of replies (declines = [\"idk\", \"no clue lol\"])")
    return Facts(me=me, qa=qa, checks=tuple(checks), unknown=tuple(unknown), declines=tuple(declines))

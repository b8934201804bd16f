"""What the twin is told in its prompt besides the conversation: facts it knows, and who it texts.

**The knowledge base** is a list of fact lines: the facts file of ``twin process --facts`` (each
``[me]`` entry as ``key: value``, each ``[[qa]]`` as its first question and its answer) plus an
optional notes file (``--notes``: one fact a line, ``#`` comments). For each incoming message the
most relevant lines are retrieved with BM25 (the ``bm25s`` library, words stemmed by
PyStemmer's English stemmer; no model, nothing downloaded), at most ``Rules.facts_per_prompt``
(default 3) of them and only lines that share a word with the message, and shown in the system line
(:func:`dataprocess.template.system_prompt`). Training builds every prompt through the same
:meth:`Memory.facts_for`, so the twin learns to use what it is shown, and a served prompt still
equals a training prompt.

**The contact** is the chat's display name, or the group the user gave it
(``--contact-groups groups.toml``: ``mum = "family"``), shown as ``texting: mum (family)``.
Training takes it from the chat the pair came from; the server, ``twin chat --as NAME`` and the
bots pass it per request.

Both travel together as :class:`Memory`: ``WORKSPACE/data/memory.json`` (``MEMORY_FILE``) and, in
an exported GGUF, the metadata key ``core.artifacts.GGUF_KEY_MEMORY``, so ``twin serve --model``
knows them too.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from core.artifacts import GGUF_KEY_MEMORY
from core.settings import Rules

from .clean import clean_text
from .errors import ChatExportError
from .facts import Facts, read_toml
from .template import prompt_messages

MEMORY_FILE = "memory.json"
MAX_FACT_CHARS = 300        # a longer notes line is cut (the prompt stays short)
MAX_FACTS = 5000            # the knowledge base's bound: beyond it, lines are refused with a count

# Words that say nothing about which fact is meant: English stop words (bm25s's list) plus the
# question words and texting shorthand that every question to the twin holds.
_QUESTION_WORDS = ("what", "whats", "what's", "where", "wheres", "who", "whos", "how", "hows", "when",
                   "which", "why", "u", "ur", "ya", "yo", "do", "does", "did", "you", "your", "youre",
                   "r", "pls", "plz", "lol", "haha", "hey", "hi", "tell", "me", "days", "these", "now")

# Texting shorthand for the words facts are written with ("whens ur bday" must find "birthday").
# Stemming cannot join them and no maintained library lists them, so a short list here; applied
# to the facts and the incoming text alike.
_SHORTHAND = {"bday": "birthday", "b-day": "birthday", "fav": "favorite",
              "fave": "favorite", "favourite": "favorite", "favs": "favorites", "sis": "sister",
              "bro": "brother", "bf": "boyfriend", "gf": "girlfriend", "hubby": "husband",
              "mum": "mom", "mommy": "mom", "mama": "mom", "pops": "dad", "daddy": "dad", "fam": "family",
              "yr": "year", "yrs": "years", "hometown": "home town", "wrk": "work", "uni": "university",
              "pic": "picture", "bday's": "birthday", "doggo": "dog", "pup": "dog",
              "puppy": "dog"}
_SHORTHAND_WORD = re.compile(r"(?<![\w'-])(" + "|".join(map(re.escape, sorted(_SHORTHAND, key=len, reverse=True)))
                             + r")(?![\w'-])", re.IGNORECASE)


def spell_out(text: str) -> str:
    """``text`` with texting shorthand written out (:data:`_SHORTHAND`), for retrieval only."""
    return _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)


log = logging.getLogger(__name__)


def fact_lines(facts: Facts | None) -> list[tuple[str, str]]:
    """The facts file as knowledge-base lines, each ``(shown, searched)``: a ``[me]`` entry is
    ``key: value`` and is found by both; a ``[[qa]]`` answer is shown after its questions and
    found by the questions alone (an answer's incidental words, "busy week", would match
    small talk). The questions ``[me]`` entries get built in add nothing new."""
    if facts is None:
        return []
    lines = []
    for key, value in facts.me.items():
        line = f"{key.replace('_', ' ')}: {value}"
        lines.append((line, line))
    by_answer: dict[str, list[str]] = {}
    for qa in facts.qa:
        if qa.answer not in facts.me.values():
            by_answer.setdefault(qa.answer, []).append(qa.question)
    lines.extend((f"{' / '.join(questions)} {answer}", " ".join(questions)) for answer, questions in by_answer.items())
    return lines


def read_notes(path: Path) -> list[str]:
    """A notes file: one fact a line; blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChatExportError(f"{path}: notes file not found") from None
    except UnicodeDecodeError:
        raise ChatExportError(f"{path}: the notes file is not UTF-8 text") from None
    except IsADirectoryError:
        raise ChatExportError(f"{path}: a folder, not a notes file") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_contact_groups(path: Path) -> dict[str, str]:
    """``groups.toml``: ``name = "group"`` lines (``mum = "family"``), or ``[family]`` tables with
    ``members = [...]``. Names are matched without case."""
    data = read_toml(path, "contact groups file")
    groups: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            groups[key.casefold()] = value
        elif isinstance(value, dict) and isinstance(value.get("members"), list):
            groups.update({str(member).casefold(): key for member in value["members"]})
        else:
            raise ChatExportError(f"{path}: {key!r} must be a group name (name = \"family\") "
                                  "or a table with members = [...]")
    return groups


@dataclass(frozen=True)
class Memory:
    """The knowledge base and the contact groups of one twin; builds what its prompts are told."""

    facts: tuple[str, ...] = ()
    groups: Mapping[str, str] = field(default_factory=dict)
    search: tuple[str, ...] = ()     # the text each fact is found by (its own text when empty)

    @classmethod
    def build(cls, lines: list[str | tuple[str, str]], groups: Mapping[str, str] | None = None, *,
              lowercase: bool = True) -> Memory:
        """Fact lines (a notes line, or ``(shown, searched)`` from :func:`fact_lines`) cleaned as
        training text is (lowercased, URLs, emoji), deduplicated and bounded."""
        kept: dict[str, str] = {}
        for line in lines:
            shown, searched = (line, line) if isinstance(line, str) else line
            cleaned = clean_text(shown, lowercase=lowercase, scrub=False)[:MAX_FACT_CHARS].strip()
            if cleaned and cleaned not in kept:
                kept[cleaned] = clean_text(searched, lowercase=lowercase, scrub=False)
        if len(kept) > MAX_FACTS:
            log.warning("the knowledge base holds %d facts: only the first %d are kept", len(kept), MAX_FACTS)
            kept = dict(list(kept.items())[:MAX_FACTS])
        return cls(tuple(kept), {k.casefold(): v for k, v in (groups or {}).items()}, tuple(kept.values()))

    # -- retrieval -----------------------------------------------------------------------------
    @cached_property
    def _index(self):
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        stopwords = sorted(set(bm25s.stopwords.STOPWORDS_EN) | set(_QUESTION_WORDS))
        retriever = bm25s.BM25()
        searched = self.search if len(self.search) == len(self.facts) else self.facts
        retriever.index(bm25s.tokenize([spell_out(t) for t in searched], stopwords=stopwords, stemmer=stemmer,
                                       show_progress=False), show_progress=False)
        return retriever, stemmer, stopwords, threading.Lock()

    def facts_for(self, text: str, k: int) -> tuple[str, ...]:
        """The facts shown with ``text`` (an incoming turn, already cleaned): the best ``k``
        lines (``Rules.facts_per_prompt``) sharing a (stemmed) word with it, best first; ()
        when none does."""
        if not self.facts or k <= 0 or not text:
            return ()
        import bm25s

        retriever, stemmer, stopwords, lock = self._index
        query = bm25s.tokenize([spell_out(text)], stopwords=stopwords, stemmer=stemmer, show_progress=False,
                               return_ids=False)
        if not query or not query[0]:
            return ()
        with lock:  # bm25s keeps no per-call state, but its tokenizer vocabulary lookups are shared
            docs, scores = retriever.retrieve(query, k=min(k, len(self.facts)),
                                              show_progress=False, n_threads=1)
        return tuple(self.facts[int(d)] for d, s in zip(docs[0], scores[0]) if float(s) > 0)

    # -- contacts ------------------------------------------------------------------------------
    def contact_label(self, name: str | None, rules: Rules | None = None) -> str | None:
        """How the prompt names the contact: ``name (group)`` with a group, ``name`` without;
        lowercased under ``rules.lowercase`` (so "Mum" and "mum" are one contact), and only the
        group (or nothing) under ``rules.anonymize_contacts``."""
        rules = rules or Rules()
        if not name or not name.strip():
            return None
        name = " ".join(name.split())[:80]
        group = self.groups.get(name.casefold())
        if rules.anonymize_contacts:
            label = group
        else:
            label = f"{name} ({group})" if group else name
        return label.lower() if label and rules.lowercase else label

    # -- the prompt ------------------------------------------------------------------------------
    def prompt(self, persona: str, incoming: str, context=(), rules: Rules | None = None,
               contact: str | None = None) -> list[dict[str, str]]:
        """The chat messages of one turn, as training and serving both build them: the facts
        retrieved for ``incoming`` and (with ``rules.contact_in_prompt``) the contact's label in
        the system line, then ``context`` and ``incoming`` (:func:`~dataprocess.template.prompt_messages`)."""
        rules = rules or Rules()
        return prompt_messages(persona, incoming, context, facts=self.facts_for(incoming, rules.facts_per_prompt),
                               contact=self.contact_label(contact, rules) if rules.contact_in_prompt else None)

    # -- storage -------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"facts": list(self.facts), "search": list(self.search), "groups": dict(self.groups)},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Memory:
        """A stored memory; an empty one when absent or unreadable (with a warning)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            facts = tuple(str(f) for f in data.get("facts", ()))[:MAX_FACTS]
            groups = {str(k): str(v) for k, v in (data.get("groups") or {}).items()}
            search = tuple(str(f) for f in data.get("search", ()))[:MAX_FACTS]
            return cls(facts, groups, search if len(search) == len(facts) else ())
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("the twin's memory is unreadable (%s): no facts or contact groups", exc)
            return cls()

    @classmethod
    def load(cls, data_dir: Path) -> Memory:
        path = Path(data_dir) / MEMORY_FILE
        return cls.from_json(path.read_text(encoding="utf-8")) if path.is_file() else cls()

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Memory:
        return cls.from_json(metadata.get(GGUF_KEY_MEMORY))

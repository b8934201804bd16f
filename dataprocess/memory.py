"""What the twin is told in its prompt besides the conversation: facts it knows, and who it texts.

**The knowledge base** is a list of fact lines: the facts file of ``twin process --facts`` (each
``[me]`` entry as ``key: value``, each ``[[qa]]`` as its first question and its answer) plus an
optional notes file (``--notes``: one fact a line, ``#`` comments). For each incoming message the
lines that share a word with it are found with BM25 (the ``bm25s`` library, words stemmed by
PyStemmer's English stemmer, texting shorthand written out), then ranked by meaning
(:mod:`dataprocess.meaning`: all-MiniLM-L6-v2, shipped inside a wheel, nothing downloaded); at
most ``Rules.facts_per_prompt`` (default 3) lines near enough are kept (:meth:`Memory.scored_facts`)
and shown in the system line
(:func:`dataprocess.template.system_prompt`). Training builds every prompt through the same
:meth:`Memory.facts_for`, so the twin learns to use what it is shown, and a served prompt still
equals a training prompt.

**The contact** is the chat's display name, or the group the user gave it
(``--contact-groups groups.toml``: ``mum = "family"``), shown as ``texting: mum (family)``, and,
where the person writes to them unlike to everyone, how (``you write to them: longer texts``:
:mod:`dataprocess.contact_voice`).
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
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from core.artifacts import GGUF_KEY_MEMORY
from core.settings import Rules

from .clean import clean_text
from .errors import ChatExportError
from .facts import ASKED_WITH, Facts, read_toml
from .template import prompt_messages

MEMORY_FILE = "memory.json"
MAX_FACT_CHARS = 300        # a longer notes line is cut (the prompt stays short)
MAX_FACTS = 5000            # the knowledge base's bound: beyond it, lines are refused with a count
MAX_LABELS = 4096           # contact labels remembered (a server meets new names; each is a short string)
CANDIDATES = 16             # lines sharing a word with the message that are ranked by meaning
MEANING_FLOOR = 0.35        # cosine below which a line is not about the message (all-MiniLM-L6-v2)
MEANING_MARGIN = 0.10       # lines further than this below the best one only distract the twin

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


@lru_cache(maxsize=1)
def _lexicon():
    """The stemmer and stop words that every search here tokenizes with."""
    import bm25s
    import Stemmer

    return Stemmer.Stemmer("english"), sorted(set(bm25s.stopwords.STOPWORDS_EN) | set(_QUESTION_WORDS))


def content_words(text: str) -> frozenset[str]:
    """The stemmed words of ``text`` that say which fact is meant (shorthand written out, stop
    and question words left out), as the search sees them."""
    import bm25s

    stemmer, stopwords = _lexicon()
    tokens = bm25s.tokenize([spell_out(text)], stopwords=stopwords, stemmer=stemmer, show_progress=False,
                            return_ids=False)
    return frozenset(tokens[0]) if tokens else frozenset()


def fact_lines(facts: Facts | None) -> list[tuple[str, str]]:
    """The facts file as knowledge-base lines, each ``(shown, searched)``: a ``[me]`` entry is
    ``key: value`` and is found by both and by the words its key is asked about with
    (:data:`~dataprocess.facts.ASKED_WITH`); a ``[[qa]]`` answer is shown after its questions and
    found by the questions alone (an answer's incidental words, "busy week", would match
    small talk). The questions ``[me]`` entries get built in add nothing new."""
    if facts is None:
        return []
    lines = []
    for key, value in facts.me.items():
        line = f"{key.replace('_', ' ')}: {value}"
        lines.append((line, f"{line} ({ASKED_WITH[key]})" if key in ASKED_WITH else line))
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
    voices: Mapping[str, str] = field(default_factory=dict)  # contact label -> how you write to them

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
    @property
    def _searched(self) -> tuple[str, ...]:
        """The text each fact is found by: its search text, or its own text when there is none."""
        return self.search if len(self.search) == len(self.facts) else self.facts

    @cached_property
    def fact_words(self) -> tuple[frozenset[str], ...]:
        """Each fact's :func:`content_words` as shown: what a reply that states it holds (a line's
        search words, "dog cat", are how it is asked about, not what it says)."""
        return tuple(content_words(fact) for fact in self.facts)

    @cached_property
    def _index(self):
        import bm25s

        stemmer, stopwords = _lexicon()
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize([spell_out(t) for t in self._searched], stopwords=stopwords, stemmer=stemmer,
                                       show_progress=False), show_progress=False)
        return retriever, threading.Lock()

    @cached_property
    def _meanings(self) -> np.ndarray:
        """Each fact's embedding (:mod:`dataprocess.meaning`), as shown and as searched: a
        message is as near a fact as the nearer of the two."""
        from .meaning import embed

        return np.stack([embed(list(self.facts)), embed([spell_out(t) for t in self._searched])])

    def _candidates(self, queries: list[list[str]]) -> list[list[int]]:
        """For each query (its content words), the lines BM25 finds sharing a word with it,
        :data:`CANDIDATES` at most, best first."""
        retriever, lock = self._index
        with lock:  # bm25s keeps no per-call state, but its tokenizer vocabulary lookups are shared
            docs, scores = retriever.retrieve(queries, k=min(CANDIDATES, len(self.facts)),
                                              show_progress=False, n_threads=1)
        return [[int(d) for d, s in zip(row_docs, row_scores) if float(s) > 0]
                for row_docs, row_scores in zip(docs, scores)]

    def scored_facts(self, text: str, k: int) -> list[tuple[str, float]]:
        """The facts shown with ``text`` and how near each is in meaning (cosine), best first.

        Two stages: BM25 finds the lines that share a (stemmed, shorthand written out) word with
        the message, :data:`CANDIDATES` at most, so most small talk costs no embedding and a
        fact never comes for a message that names nothing in it; then they are ranked by
        meaning, and only those at least :data:`MEANING_FLOOR` near and within
        :data:`MEANING_MARGIN` of the best are kept, ``k`` at most. BM25 alone ranked the
        wrong line first whenever a word was rarer in the knowledge base than the one that
        mattered ("where does ur sister live" got "where do you live" first)."""
        if not self.facts or k <= 0 or not text:
            return []
        words = content_words(text)
        if not words:
            return []
        key = tuple(sorted(words))
        candidates = self._prepared.get(key)  # found by prepare() for this batch of prompts
        if candidates is None:
            candidates = self._candidates([list(key)])[0]
        if not candidates:
            return []
        from .meaning import embed_one

        near = (self._meanings[:, candidates, :] @ embed_one(spell_out(text))).max(axis=0)
        ranked = sorted(zip(candidates, near.tolist()), key=lambda item: (-item[1], item[0]))
        best = ranked[0][1]
        return [(self.facts[i], round(score, 4)) for i, score in ranked[:k]
                if score >= MEANING_FLOOR and score >= best - MEANING_MARGIN]

    def prepare(self, texts, k: int) -> None:
        """Embed, in one batch, those of ``texts`` (incoming turns, cleaned) that will be ranked by
        meaning, ahead of their prompts (:func:`dataprocess.meaning.embed_cached`): on 2 cores a
        message costs ~3 ms in a batch and ~22 ms alone. What the prompts hold does
        not change; only how soon they are built. ``k`` as in :meth:`scored_facts` (0: nothing
        will be ranked, so nothing is embedded)."""
        if not self.facts or k <= 0:
            return
        texts = [text for text in dict.fromkeys(texts) if text]
        queries = [(text, sorted(content_words(text))) for text in texts]
        queries = [(text, words) for text, words in queries if words]
        if not queries:
            return
        found = self._candidates([words for _, words in queries])
        # kept for scored_facts, which would search the same words again (the last batch only: a
        # query's lines do not depend on the batch it is searched in, each row is scored alone)
        self._prepared.clear()
        self._prepared.update((tuple(words), candidates) for (_, words), candidates in zip(queries, found))
        from .meaning import embed_cached

        embed_cached([spell_out(text) for (text, _), candidates in zip(queries, found) if candidates])

    def warm(self) -> Memory:
        """Build the search index and the facts' embeddings now (loading the model takes seconds:
        a server does it before its first request, not during it). Returns ``self``."""
        if self.facts:
            self._index, self._meanings  # noqa: B018 (cached properties: reading them builds them)
        return self

    def facts_for(self, text: str, k: int) -> tuple[str, ...]:
        """The facts shown with ``text`` (an incoming turn, already cleaned), best first, ``k``
        at most (``Rules.facts_per_prompt``); () when none is near (:meth:`scored_facts`)."""
        if not self.facts or k <= 0:  # no knowledge base: the common case, once per example
            return ()
        return tuple(fact for fact, _ in self.scored_facts(text, k))

    # -- contacts ------------------------------------------------------------------------------
    def contact_label(self, name: str | None, rules: Rules | None = None) -> str | None:
        """How the prompt names the contact: ``name (group)`` with a group, ``name`` without;
        lowercased under ``rules.lowercase`` (so "Mum" and "mum" are one contact), and only the
        group (or nothing) under ``rules.anonymize_contacts``."""
        rules = rules or Rules()
        key = (name, rules.anonymize_contacts, rules.lowercase)
        labels = self._labels
        if key in labels:  # a chat's label is asked for once per example: made once
            return labels[key]
        label = self._label(name, rules)
        if len(labels) < MAX_LABELS:
            labels[key] = label
        return label

    @cached_property
    def _prepared(self) -> dict[tuple[str, ...], list[int]]:
        return {}

    @cached_property
    def _labels(self) -> dict[tuple, str | None]:
        return {}

    def _label(self, name: str | None, rules: Rules) -> str | None:
        if not name or not name.strip():
            return None
        name = " ".join(name.split())[:80]
        group = self.groups.get(name.casefold())
        if rules.anonymize_contacts:
            label = group
        else:
            label = f"{name} ({group})" if group else name
        return label.lower() if label and rules.lowercase else label

    def with_voices(self, voices: Mapping[str, str]) -> Memory:
        """This memory with ``voices`` (:func:`dataprocess.contact_voice.voice_hints`) as the
        words each contact's label is shown with."""
        return replace(self, voices={str(k): str(v) for k, v in voices.items()})

    # -- the prompt ------------------------------------------------------------------------------
    def prompt(self, persona: str, incoming: str, context=(), rules: Rules | None = None,
               contact: str | None = None) -> list[dict[str, str]]:
        """The chat messages of one turn, as training and serving both build them: the facts
        retrieved for ``incoming`` and (with ``rules.contact_in_prompt``) the contact's label in
        the system line, then ``context`` and ``incoming`` (:func:`~dataprocess.template.prompt_messages`)."""
        rules = rules or Rules()
        label = self.contact_label(contact, rules) if rules.contact_in_prompt else None
        return prompt_messages(persona, incoming, context, facts=self.facts_for(incoming, rules.facts_per_prompt),
                               contact=label, voice=self.voices.get(label) if label else None)

    # -- storage -------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"facts": list(self.facts), "search": list(self.search), "groups": dict(self.groups),
                           "voices": dict(self.voices)}, ensure_ascii=False)

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
            voices = {str(k): str(v) for k, v in list((data.get("voices") or {}).items())[:MAX_LABELS]}
            return cls(facts, groups, search if len(search) == len(facts) else (), voices)
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

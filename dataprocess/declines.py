"""Training examples that teach the twin to decline what its knowledge base does not hold.

A twin trained only on questions its facts answer learns "a question about me gets an answer":
asked something no fact holds ("whats ur favorite color"), it answers with the nearest fact
or makes one up. So ``twin process`` adds, when there is a knowledge base, questions about the
person from :data:`UNKNOWABLE` that the knowledge base cannot answer, each answered by a decline
in the person's words: the facts file's ``declines = [...]`` list, or :data:`DEFAULT_DECLINES`.
Their prompts hold whatever the knowledge base retrieves for them (often a near miss: "favorite
food" for "favorite color"), built by the same :meth:`~dataprocess.memory.Memory.prompt` as
every other prompt, so the twin learns to answer from a fact that fits and to decline when
none does.

The list is written here, not mined from the user's data, because no library lists "questions
a person could be asked about themselves"; it is kept apart from the held-out ``[[unknown]]``
questions of the bundled sample (``samples/facts.toml``), which ``twin eval`` asks instead, so
its invented-facts figure is measured on questions the twin never saw.
"""
from __future__ import annotations

from core.settings import Rules
from core.terminator import completion_text

from .clean import clean_text
from .memory import Memory, content_words

UNKNOWABLE = (
    "what's your favorite color?", "whats ur shoe size", "do you have any tattoos?",
    "what's your middle name?", "what phone do you have?", "whats ur coffee order",
    "what's your best friend's name?", "how tall are you?", "are you allergic to anything?",
    "what's your favorite season?", "what languages do you speak?", "what's your favorite holiday?",
    "where would you go on a dream vacation?", "whats ur favorite ice cream flavor",
    "what time do you usually wake up?", "are you left handed?", "what's your favorite number?",
    "what's your wifi password lol", "what's your favorite board game?",
)
DEFAULT_DECLINES = ("idk", "hmm idk", "no idea lol", "not sure tbh", "idk honestly", "no idea")


def answerable(question: str, memory: Memory) -> bool:
    """Whether some fact holds every content word of ``question`` ("favorite color" is
    answerable by "favorite color: green", not by "favorite food: tacos")."""
    words = content_words(question)
    return bool(words) and any(words <= fact for fact in memory.fact_words)


def decline_examples(memory: Memory, persona: str, rules: Rules, declines: tuple[str, ...] = ()) -> list[dict]:
    """Each :data:`UNKNOWABLE` question the knowledge base cannot answer, answered with a
    decline (``declines``, or :data:`DEFAULT_DECLINES`, taken in turn); none without facts."""
    if not memory.facts:
        return []
    phrases = [clean_text(d, lowercase=rules.lowercase, scrub=False) for d in (declines or DEFAULT_DECLINES)]
    phrases = [p for p in phrases if p] or list(DEFAULT_DECLINES)
    out = []
    for number, question in enumerate(UNKNOWABLE):
        question = clean_text(question, lowercase=rules.lowercase, scrub=False)
        if answerable(question, memory):
            continue
        for repeat in range(max(rules.facts_repeat, 0)):
            out.append({
                "prompt": memory.prompt(persona, question, (), rules),
                "completion": [{"role": "assistant",
                                "content": completion_text(phrases[(number + repeat) % len(phrases)])}],
                "conversation": "facts",
                "source": "declines",
            })
    return out

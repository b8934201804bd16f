"""Training examples that teach the twin to answer from the line shown, and to decline without one.

A twin trained only on questions its facts answer learns "a question about me gets an answer":
asked something no fact holds ("whats ur favorite color"), it answers with the nearest fact
or makes one up; and it learns its facts' answers by heart, so a line it is shown counts for
less than the question it was trained on ("what kind of dog is pickle" got the answer to "what's
your dog's name?" with ``pet: pickle, my corgi mix`` in the prompt). So ``twin process`` adds,
when there is a knowledge base, lessons on questions about the person that the knowledge base
does not answer (:data:`UNKNOWABLE`, :data:`READINGS`, :data:`NEAR_MISSES`):

- **declines** (:func:`decline_examples`): the question with whatever the knowledge base
  retrieves for it (often a near miss: "favorite food" for "favorite color"), answered by a
  decline in the person's words: the facts file's ``declines = [...]`` list, or
  :data:`DEFAULT_DECLINES`;
- **readings** (:func:`reading_examples`): the same question with a line that answers it added
  to what is retrieved (:data:`READINGS`: ``favorite color: green``), answered from that line,
  a different line each repeat (green, dark blue, mustard yellow), so no answer can be learned
  by heart and only the line tells the twin what to say;
- **near misses** (:data:`NEAR_MISSES`, among the declines): a question declined beside an
  invented line on its topic that does not answer it (``lives: portland`` for "what's your zip
  code?"): a line that is near is not yet an answer.

Each lesson's question is asked as written the first time and as texted the next (:func:`texted`:
"whats ur shoe size again"): a twin taught only the written form read the line for "how old
are you?" and ignored it for "how old r u again".

Together they make the line the only difference between answering and declining. The lines of
the readings and near misses are invented and live only in those training prompts, never in the knowledge base.
Every prompt is built by the same :func:`~dataprocess.template.prompt_messages` as every other.
``twin update`` adds none of them again: the old training split holds them and replays them.

The lists are written here, not mined from the user's data, because no library lists "questions
a person could be asked about themselves"; they are kept apart from the held-out ``[[unknown]]``
questions of the bundled sample (``samples/facts.toml``), which ``twin eval`` asks instead, so
its invented-facts figure is measured on questions the twin never saw.
"""
from __future__ import annotations

import re

from core.settings import Rules
from core.terminator import completion_text

from .clean import clean_text
from .memory import Memory, content_words
from .template import prompt_messages

UNKNOWABLE = (
    "what's your favorite color?", "whats ur shoe size", "do you have any tattoos?",
    "what's your middle name?", "what phone do you have?", "whats ur coffee order",
    "what's your best friend's name?", "how tall are you?", "are you allergic to anything?",
    "what's your favorite season?", "what languages do you speak?", "what's your favorite holiday?",
    "where would you go on a dream vacation?", "whats ur favorite ice cream flavor",
    "what time do you usually wake up?", "are you left handed?", "what's your favorite number?",
    "what's your wifi password lol", "what's your favorite board game?",
    "what's your cat's name?", "what kind of bike do you ride?", "what's your roommate's name?",
    # yes/no questions: "ya!! | u?" to one the facts cannot answer says a fact as surely as a name does
    "are you married?", "do you have kids?", "do you play any instruments?", "have you ever been to europe?",
    "do you smoke?", "are you vegetarian?",
)

# For each question, lines that would answer it and the answer read from each (and, in the last
# rows, a line shown before it that names the same thing without the answer): one is added to
# the prompt of each reading (this module's docstring).
READINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "what's your favorite color?": (("favorite color: green", "green"), ("favorite color: dark blue", "dark blue"),
                                    ("favorite color: mustard yellow", "mustard yellow")),
    "whats ur shoe size": (("shoe size: 8.5", "8.5"), ("shoe size: 9", "9"), ("shoe size: 7", "7")),
    "do you have any tattoos?": (("tattoos: a tiny wave on my ankle", "a tiny wave on my ankle"),
                                 ("tattoos: two, both on my arm", "two, both on my arm"),
                                 ("tattoos: none, too scared", "none, too scared")),
    "what's your middle name?": (("middle name: rose", "rose"), ("middle name: june", "june"),
                                 ("middle name: claire", "claire")),
    "what phone do you have?": (("phone: an iphone 13", "an iphone 13"), ("phone: a pixel 7", "a pixel 7"),
                                ("phone: an old iphone se", "an old iphone se")),
    "whats ur coffee order": (("coffee order: oat latte", "oat latte"), ("coffee order: iced americano",
                              "iced americano"), ("coffee order: a cortado", "a cortado")),
    "what's your best friend's name?": (("best friend: jo", "jo"), ("best friend: lena", "lena"),
                                        ("best friend: theo", "theo")),
    "how tall are you?": (("height: 5'6", "5'6"), ("height: 5'4", "5'4"), ("height: 5'9", "5'9")),
    "are you allergic to anything?": (("allergies: cats", "cats"), ("allergies: peanuts", "peanuts"),
                                      ("allergies: penicillin", "penicillin")),
    "what's your favorite season?": (("favorite season: fall", "fall"), ("favorite season: summer", "summer"),
                                     ("favorite season: winter", "winter")),
    "what languages do you speak?": (("languages: english and some spanish", "english and some spanish"),
                                     ("languages: english and swedish", "english and swedish"),
                                     ("languages: just english", "just english")),
    "what's your favorite holiday?": (("favorite holiday: halloween", "halloween"),
                                      ("favorite holiday: thanksgiving", "thanksgiving"),
                                      ("favorite holiday: the fourth of july", "the fourth of july")),
    "where would you go on a dream vacation?": (("dream vacation: japan", "japan"), ("dream vacation: iceland",
                                                "iceland"), ("dream vacation: portugal", "portugal")),
    "whats ur favorite ice cream flavor": (("favorite ice cream: mint chip", "mint chip"),
                                           ("favorite ice cream: salted caramel", "salted caramel"),
                                           ("favorite ice cream: strawberry", "strawberry")),
    "what time do you usually wake up?": (("wakes up: around 7", "around 7"), ("wakes up: 6:30", "6:30"),
                                          ("wakes up: like 9 on weekends", "like 9 on weekends")),
    "are you left handed?": (("hand: left handed", "left handed"), ("hand: right handed", "right handed"),
                             ("hand: both, kind of", "both, kind of")),
    "what's your favorite number?": (("favorite number: 7", "7"), ("favorite number: 3", "3"),
                                     ("favorite number: 11", "11")),
    "what's your favorite board game?": (("favorite board game: catan", "catan"),
                                         ("favorite board game: codenames", "codenames"),
                                         ("favorite board game: scrabble", "scrabble")),
    "what's your cat's name?": (("cat: biscuit, a grey tabby", "biscuit"), ("cat: mochi, my fluffy orange boy",
                                "mochi"), ("cat: olive, a tiny black cat", "olive")),
    "what kind of bike do you ride?": (("bike: a green surly cross check", "a green surly"),
                                       ("bike: an old red schwinn", "an old red schwinn"),
                                       ("bike: a white cannondale road bike", "a cannondale road bike")),
    "what's your roommate's name?": (("roommate: jo, we met at work", "jo"), ("roommate: priya's cousin dev", "dev"),
                                     ("roommate: nobody, i live alone", "nobody, i live alone")),
    "are you married?": (("married: yes, two years in june", "yes, two years in june"),
                         ("married: no, single", "no, single"), ("married: engaged actually", "engaged actually")),
    "do you have kids?": (("kids: a little boy, he's 4", "a little boy, he's 4"), ("kids: no kids", "no kids"),
                          ("kids: twin girls", "twin girls")),
    "do you play any instruments?": (("instruments: guitar, badly", "guitar, badly"),
                                     ("instruments: piano since i was 6", "piano since i was 6"),
                                     ("instruments: none", "none")),
    "have you ever been to europe?": (("travel: paris and rome in 2019", "paris and rome in 2019"),
                                      ("travel: never left the us", "never left the us"),
                                      ("travel: london once for work", "london once for work")),
    "do you smoke?": (("smoking: never", "never"), ("smoking: quit last year", "quit last year"),
                      ("smoking: only at parties lol", "only at parties lol")),
    "are you vegetarian?": (("diet: vegetarian since college", "vegetarian since college"),
                            ("diet: i eat everything", "i eat everything"), ("diet: vegan", "vegan")),
    # a detail of a named thing, read past a line that names it but does not say it (shown first)
    "what kind of cat is biscuit?": (("cat: biscuit, a grey tabby", "a grey tabby",
                                      "what's your cat's name? / how's biscuit? biscuit!! | she says hi"),),
    "what breed is mochi?": (("cat: mochi, my fluffy orange maine coon", "a maine coon",
                              "how's mochi? mochi is being so loud today lol"),),
    "what kind of plant is gus?": (("plant: gus, a big monstera", "a monstera",
                                    "do you have plants? / how's gus? ya gus!! | hes thriving"),),
}
# Questions declined beside an invented line that names their topic but does not answer it (a
# line about where you live holds no zip code): a line that is near is not yet an answer. The
# lines are READINGS' kind, so the same line is read in one lesson and declined beside in another.
NEAR_MISSES: dict[str, str] = {
    "what's your zip code?": "lives: portland",
    "what did you want to be as a kid?": "job: i teach third grade",
    "when did you get your cat?": "cat: biscuit, a grey tabby",
    "where does your roommate work?": "roommate: jo, we met at a party",
    "how much did your bike cost?": "bike: an old red schwinn",
    "how long have you had your phone?": "phone: a pixel 7",
    "where did you get your tattoo done?": "tattoos: a tiny wave on my ankle",
    "what's your best friend's last name?": "best friend: lena",
}
DEFAULT_DECLINES = ("idk", "hmm idk", "no idea lol", "not sure tbh", "idk honestly", "no idea")

# How a written question is texted. Written here because no library writes English the way it is
# texted; the few swaps below are the ones the sample's and users' questions show.
_TEXTING = ((r"(\w)'s\b", r"\1s"), (r"\byour\b", "ur"), (r"\byou\b", "u"),
            (r"\bare\b", "r"), (r"\bfavorite\b", "fav"), (r"\?$", ""))
_TEXTED_AROUND = ("{} again", "wait {}", "{} lol", "ok but {}", "{} btw", "{}??")


def texted(question: str, repeat: int, number: int = 0) -> str:
    """``question`` as the ``repeat``-th lesson asks it: as written the first time (and every
    third), texted ("whats ur fav color") the second, texted with a word around it ("... again",
    "wait ...": which one turns with ``number``) the third."""
    form = repeat % 3
    if form == 0:
        return question
    text = question.strip()
    for pattern, short in _TEXTING:
        text = re.sub(pattern, short, text)
    return text if form == 1 else _TEXTED_AROUND[number % len(_TEXTED_AROUND)].format(text)


def answerable(question: str, memory: Memory) -> bool:
    """Whether some fact holds every content word of ``question`` ("favorite color" is
    answerable by "favorite color: green", not by "favorite food: tacos")."""
    words = content_words(question)
    return bool(words) and any(words <= fact for fact in memory.fact_words)


def _lesson(prompt: list[dict], answer: str, source: str) -> dict:
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion_text(answer)}],
            "conversation": "facts", "source": source}


def decline_examples(memory: Memory, persona: str, rules: Rules, declines: tuple[str, ...] = ()) -> list[dict]:
    """Each :data:`UNKNOWABLE` question the knowledge base cannot answer, answered with a
    decline (``declines``, or :data:`DEFAULT_DECLINES`, taken in turn), then each
    :data:`NEAR_MISSES` question with its line added to what is retrieved; none without facts."""
    if not memory.facts:
        return []
    clean = lambda text: clean_text(text, lowercase=rules.lowercase, scrub=False)  # noqa: E731
    phrases = [clean(d) for d in (declines or DEFAULT_DECLINES)]
    phrases = [p for p in phrases if p] or list(DEFAULT_DECLINES)
    asked = [(q, ()) for q in UNKNOWABLE]
    if rules.facts_per_prompt > 0:
        asked += [(q, (line,)) for q, line in NEAR_MISSES.items()]
    out = []
    for number, (question, added) in enumerate(asked):
        question = clean(question)
        if answerable(question, memory):
            continue
        for repeat in range(max(rules.facts_repeat, 0)):
            asked_as = clean(texted(question, repeat, number))
            prompt = (_shown_with(memory, persona, asked_as, [clean(t) for t in added], number + repeat, rules)
                      if added else memory.prompt(persona, asked_as, (), rules))
            out.append(_lesson(prompt, phrases[(number + repeat) % len(phrases)], "declines"))
    return out


def _shown_with(memory: Memory, persona: str, question: str, added: list[str], turn: int, rules: Rules,
                first: bool = False) -> list[dict]:
    """The prompt of ``question`` with ``added`` lines among what the knowledge base retrieves for
    it: at the top with ``first``, else at place ``turn`` (modulo), ``rules.facts_per_prompt`` in
    all, the last added line always kept."""
    added = added[-rules.facts_per_prompt:]
    shown = list(memory.facts_for(question, rules.facts_per_prompt)[:rules.facts_per_prompt - len(added)])
    at = 0 if first else turn % (len(shown) + 1)
    shown[at:at] = added
    return prompt_messages(persona, question, (), facts=tuple(shown))


def reading_examples(memory: Memory, persona: str, rules: Rules) -> list[dict]:
    """Each :data:`READINGS` question the knowledge base cannot answer, ``rules.facts_repeat``
    times, each time with another of its lines added to what the knowledge base retrieves for
    it (first, second or third, in turn, within ``rules.facts_per_prompt``), answered from that
    line; none without facts or with ``facts_per_prompt`` 0 (no line is ever shown)."""
    if not memory.facts or rules.facts_per_prompt <= 0:
        return []
    clean = lambda text: clean_text(text, lowercase=rules.lowercase, scrub=False)  # noqa: E731
    out = []
    for number, (question, lines) in enumerate(READINGS.items()):
        question = clean(question)
        if answerable(question, memory):
            continue
        for repeat in range(max(rules.facts_repeat, 0)):
            line, answer, *before = lines[repeat % len(lines)]
            prompt = _shown_with(memory, persona, clean(texted(question, repeat, number)),
                                 [clean(t) for t in (*before, line)], number + repeat, rules, first=bool(before))
            out.append(_lesson(prompt, clean(answer), "readings"))
    return out

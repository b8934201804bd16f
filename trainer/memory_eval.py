"""``twin eval``'s memory figures: the facts the twin knows, the ones it makes up, its voice per contact.

* **Fact accuracy**: each held-out ``[[check]]`` of the facts file (``data/fact_checks.json``,
  written by ``twin process``; never trained on) is asked :data:`ROUNDS` times, through the
  served prompt builder (the knowledge base retrieved as ``twin serve`` retrieves it) and the
  runtime eval measures; a reply is right when it holds one of the check's answers. Beside it,
  ``shown_rate``: the share of checks whose answer is on a line the prompt shows (the search's
  part), and ``accuracy_when_shown``: the accuracy on those (the twin's reading), so a miss says
  which of the two to mend.
* **Invented facts**: each ``[[unknown]]`` question (no fact answers it) is asked the same way.
  Each reply is judged by :func:`judge_unknown`: it *declines* ("idk", "no idea", "dont have",
  ... in :data:`DECLINES`, or every part of it a question back: "why do u ask?"), gives a *wrong
  fact* (it only says what one line of the knowledge base says: "oakland" to "what street do u
  live on"), or *invents* (anything else: "i drive a van"). ``invented_rate`` is the issue's
  figure (a fact about the person that the knowledge base does not hold); ``wrong_fact_rate``
  is reported beside it, so an answer is never counted as a decline. A heuristic, said so in the
  report: "lol why" counts as declining, "the matrix obviously" as invented.
* **Per contact**: for the test split's most frequent contacts, the style of the twin's replies to
  that contact's prompts against the person's own replies to that contact (every split).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

from core.terminator import MESSAGE_SEPARATOR
from dataprocess.live_prompt import LivePrompt
from dataprocess.memory import content_words
from dataprocess.splits import Example

from .fidelity import style

ROUNDS = 3                # replies per question, seeds seed, seed + 1, ...
TOP_CONTACTS = 12         # the most frequent contacts shown (8 left out the sample's Rosa Delgado)
MIN_CONTACT_PROMPTS = 3   # fewer test prompts to a contact say nothing about its voice
DECLINES = re.compile(r"\b(idk|dunno|no idea|not sure|dont know|don't know|do not know|i forget|forgot|"
                      r"dont have|don't have|do not have|never|nope|no|none|nah|not telling|guess|no clue|"
                      r"cant think|can't think|cant remember|can't remember|dont remember|don't remember)\b")
KB_SHARE = 0.8            # a reply whose words are this much one fact's words says that fact
INVENTED_MEANING = ("share of replies to questions no fact answers that state something the knowledge base "
                    "does not hold, rather than declining, asking back or repeating a fact it holds "
                    "(wrong_fact_rate; a heuristic: see trainer/memory_eval.py)")


def judge_unknown(reply: str, question: str, memory) -> str:
    """How a reply to a question no fact answers goes: "declined", "wrong fact" or "invented"."""
    text = reply.lower().strip()
    parts = [part.strip() for part in text.split(MESSAGE_SEPARATOR.strip()) if part.strip()]
    if DECLINES.search(text) or (parts and all(part.endswith("?") for part in parts)):
        return "declined"
    said = content_words(text) - content_words(question)
    if said and any(len(said & fact) >= KB_SHARE * len(said) for fact in memory.fact_words):
        return "wrong fact"
    return "invented"


def _ask(runtime, prompts: LivePrompt, questions: list[str], decoding, seed: int) -> list[list[str]]:
    """Each question's ``ROUNDS`` replies (one round after another, as eval seeds its replies)."""
    messages = [prompts.messages([], q) for q in questions] * ROUNDS
    replies = runtime.replies(messages, decoding, seed=seed)
    n = len(questions)
    return [[replies[r * n + i].text for r in range(ROUNDS)] for i in range(n)]


def _answer_shown(prompts: LivePrompt, check: dict) -> bool:
    """Whether a line shown with the check's question (retrieved as served) holds one of its answers."""
    _, turn = prompts.split([], check["question"])
    shown = " ".join(prompts.memory.facts_for(turn, prompts.rules.facts_per_prompt)).lower()
    return any(answer.lower() in shown for answer in check["answers"])


def fact_figures(runtime, prompts: LivePrompt, checks: dict, decoding, seed: int = 0) -> dict | None:
    """Fact accuracy on the held-out checks and the invented share on the unknown questions
    (None when the workspace has neither)."""
    items, unknown = checks.get("checks", []), checks.get("unknown", [])
    if not items and not unknown:
        return None
    out: dict = {"rounds": ROUNDS}
    if items:
        said = _ask(runtime, prompts, [c["question"] for c in items], decoding, seed)
        right = [[any(a.lower() in reply.lower() for a in c["answers"]) for reply in replies]
                 for c, replies in zip(items, said)]
        shown = [_answer_shown(prompts, c) for c in items]
        out["accuracy"] = round(sum(map(sum, right)) / (len(items) * ROUNDS), 4)
        out["shown_rate"] = round(sum(shown) / len(items), 4)
        read = [r for r, on in zip(right, shown) if on]
        out["accuracy_when_shown"] = round(sum(map(sum, read)) / (len(read) * ROUNDS), 4) if read else None
        out["checks"] = [{"question": c["question"], "answers": c["answers"], "replies": replies,
                          "right": sum(r), "shown": on} for c, replies, r, on in zip(items, said, right, shown)]
    if unknown:
        said = _ask(runtime, prompts, list(unknown), decoding, seed)
        judged = [[judge_unknown(reply, q, prompts.memory) for reply in replies] for q, replies in zip(unknown, said)]
        total = len(unknown) * ROUNDS
        out["invented_rate"] = round(sum(j.count("invented") for j in judged) / total, 4)
        out["wrong_fact_rate"] = round(sum(j.count("wrong fact") for j in judged) / total, 4)
        out["invented_meaning"] = INVENTED_MEANING
        out["unknown"] = [{"question": q, "replies": replies, "invented": j.count("invented"),
                           "wrong_fact": j.count("wrong fact")} for q, replies, j in zip(unknown, said, judged)]
    return out


def voice_figures(texts: list[str]) -> dict:
    """Replies, mean length, capitals rate (replies with any capital) and ``|`` rate of ``texts``."""
    figures = style(texts)
    return {"replies": len(texts), "mean_chars": figures["mean_chars"],
            "capitals_rate": round(sum(t != t.lower() for t in texts) / max(len(texts), 1), 4),
            "separator_rate": figures["separator_rate"]}


def contact_figures(sample: list[Example], replies: list, everything: list[Example],
                    top: int = TOP_CONTACTS) -> list[dict]:
    """For the ``top`` contacts with the most test prompts in ``sample`` (at least
    :data:`MIN_CONTACT_PROMPTS`): the twin's replies to them (``replies`` holds rounds of replies
    to ``sample``) against the person's replies to them in ``everything``."""
    counts = Counter(e.contact for e in sample if e.contact and e.source == "chat")
    person: dict[str, list[str]] = defaultdict(list)
    for example in everything:
        if example.contact and example.source == "chat":
            person[example.contact].append(example.reply)
    rows = []
    for contact, n in counts.most_common(top):
        if n < MIN_CONTACT_PROMPTS:
            break
        twin = [r.text for i, r in enumerate(replies) if sample[i % len(sample)].contact == contact]
        theirs, ours = voice_figures(person[contact]), voice_figures(twin)
        ratios = {k: (round(ours[k] / theirs[k], 4) if theirs[k] else None)
                  for k in ("mean_chars", "capitals_rate", "separator_rate")}
        rows.append({"contact": contact, "test_prompts": n, "person": theirs, "twin": ours, "ratios": ratios})
    return rows

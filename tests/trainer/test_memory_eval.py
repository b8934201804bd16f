"""twin eval's memory figures: fact accuracy, invented answers, style per contact."""
from core.settings import Rules
from dataprocess.live_prompt import LivePrompt
from dataprocess.memory import Memory
from dataprocess.splits import Example
from trainer.memory_eval import ROUNDS, contact_figures, fact_figures, judge_unknown
from voice.replies import Reply


class AnswersFromThePrompt:
    """A runtime that answers with the first fact its prompt was given, else a fixed line: the
    figures then depend on what retrieval put in the prompt, as a twin that uses its facts."""

    def __init__(self, otherwise: str):
        self.otherwise, self.prompts = otherwise, []

    def replies(self, prompts, decoding, seed=0):
        self.prompts.extend(prompts)
        out = []
        for messages in prompts:
            system = messages[0]["content"]
            fact = system.split("\n- ")[1] if "\n- " in system else self.otherwise
            out.append(Reply(fact, "stop"))
        return out


CHECKS = {"checks": [{"question": "whats ur dogs name", "answers": ["pickle"]},
                     {"question": "where do u live", "answers": ["oakland"]},
                     {"question": "whats ur cats name", "answers": ["mochi"]}],
          "unknown": ["whats ur favorite movie", "what car do u drive"]}


def test_fact_accuracy_counts_replies_that_hold_an_answer():
    prompts = LivePrompt("maya", Rules(), Memory.build(["my dog is pickle", "i live in oakland"]))
    runtime = AnswersFromThePrompt("idk lol")
    figures = fact_figures(runtime, prompts, CHECKS, decoding=None)
    assert figures["rounds"] == ROUNDS
    assert [c["right"] for c in figures["checks"]] == [ROUNDS, ROUNDS, 0]  # no fact about a cat
    assert figures["accuracy"] == round(2 / 3, 4)
    assert figures["invented_rate"] == 0.0  # "idk lol" declines
    # asked through the served prompt builder: the question's facts are in the prompt
    assert "- my dog is pickle" in runtime.prompts[0][0]["content"]
    assert len(runtime.prompts) == ROUNDS * 5


class Says(AnswersFromThePrompt):
    """A runtime that says the same line whatever its prompt shows."""

    def replies(self, prompts, decoding, seed=0):
        return [Reply(self.otherwise, "stop") for _ in prompts]


def test_fact_figures_tell_a_line_not_shown_from_a_line_not_read():
    memory = Memory.build(["my dog is pickle", "i live in oakland", "my cat mochi lives with my mom"])
    prompts = LivePrompt("maya", Rules(), memory)
    checks = {"checks": [*CHECKS["checks"], {"question": "what part of the bay r u in", "answers": ["oakland"]}]}
    reads = fact_figures(AnswersFromThePrompt("idk lol"), prompts, checks, decoding=None)
    # "what part of the bay" shares no word with "i live in oakland": the search shows nothing
    assert [c["shown"] for c in reads["checks"]] == [True, True, True, False]
    assert reads["shown_rate"] == 0.75 and reads["accuracy"] == 0.75
    assert reads["accuracy_when_shown"] == 1.0          # every line shown was read
    deaf = fact_figures(Says("idk lol"), prompts, checks, decoding=None)
    assert deaf["shown_rate"] == 0.75 and deaf["accuracy_when_shown"] == 0.0   # shown, not read
    blind = fact_figures(AnswersFromThePrompt("idk lol"), LivePrompt("maya", Rules(facts_per_prompt=0), memory),
                         checks, decoding=None)
    assert blind["shown_rate"] == 0.0 and blind["accuracy_when_shown"] is None


def test_an_answer_to_an_unknown_question_counts_as_invented():
    prompts = LivePrompt("maya", Rules(), Memory())
    invented = fact_figures(AnswersFromThePrompt("the matrix obviously"), prompts, CHECKS, decoding=None)
    assert invented["invented_rate"] == 1.0 and invented["accuracy"] == 0.0
    asked_back = fact_figures(AnswersFromThePrompt("why do u ask?"), prompts, CHECKS, decoding=None)
    assert asked_back["invented_rate"] == 0.0
    assert fact_figures(AnswersFromThePrompt("x"), prompts, {}, decoding=None) is None


def test_a_question_back_declines_but_an_answer_ending_in_one_does_not():
    memory = Memory.build(["favorite food: tacos, bartaco specifically", "i live in oakland"])
    assert judge_unknown("why do u ask? | lol", "whats ur favorite movie", memory) == "invented"
    assert judge_unknown("why?? | who wants to know?", "whats ur favorite movie", memory) == "declined"
    assert judge_unknown("hmm no clue", "whats ur favorite movie", memory) == "declined"
    assert judge_unknown("nooo i cant think of it lol", "whats ur favorite book", memory) == "declined"
    assert judge_unknown("i can't remember tbh", "what was ur first job", memory) == "declined"
    # "tacos | bartaco?" ends in a question mark but answers with a fact, the wrong one
    assert judge_unknown("tacos | bartaco?", "whats ur favorite movie", memory) == "wrong fact"
    assert judge_unknown("oakland!!", "what street do u live on", memory) == "wrong fact"
    assert judge_unknown("i drive a 2015 vista", "what car do u drive", memory) == "invented"


def test_a_fact_given_to_a_question_it_does_not_answer_is_a_wrong_fact_not_a_decline():
    memory = Memory.build(["my dog is pickle", "i live in oakland"])
    prompts = LivePrompt("maya", Rules(), memory)
    figures = fact_figures(AnswersFromThePrompt("i live in oakland"), prompts,
                           {"unknown": ["what street do u live on", "whats ur blood type"]}, decoding=None)
    assert figures["wrong_fact_rate"] == 1.0 and figures["invented_rate"] == 0.0
    assert [u["wrong_fact"] for u in figures["unknown"]] == [ROUNDS, ROUNDS]


def _example(contact, reply):
    return Example(({"role": "user", "content": "hi"},), reply + " DONE", contact + "#0", "chat", 0, contact)


def test_style_per_contact_against_the_persons_replies_to_them():
    everything = [_example("mum", "Hello Mum, I am fine. Talk soon!")] * 4 + [_example("sam", "lol ya")] * 5
    sample = [_example("mum", "x")] * 3 + [_example("sam", "x")] * 4 + [_example("priya", "x")]
    replies = [Reply("Hi Mum, all good here." if e.contact == "mum" else "ya lol", "stop") for e in sample] * 2
    rows = {r["contact"]: r for r in contact_figures(sample, replies, everything)}
    assert set(rows) == {"mum", "sam"}  # priya: too few test prompts to say anything
    mum, sam = rows["mum"], rows["sam"]
    assert mum["test_prompts"] == 3 and mum["twin"]["replies"] == 6 and mum["person"]["replies"] == 4
    assert mum["person"]["capitals_rate"] == 1.0 and mum["twin"]["capitals_rate"] == 1.0
    assert sam["person"]["capitals_rate"] == 0.0 and sam["ratios"]["capitals_rate"] is None
    assert mum["ratios"]["mean_chars"] == round(len("Hi Mum, all good here.") / len("Hello Mum, I am fine. Talk soon!"), 4)

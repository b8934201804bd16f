"""Examples that teach the twin to decline what its knowledge base does not hold."""
import json
from pathlib import Path

import pytest

from core.settings import Rules
from dataprocess.declines import (DEFAULT_DECLINES, NEAR_MISSES, READINGS, UNKNOWABLE, answerable, decline_examples,
                                  reading_examples, texted)
from dataprocess.errors import ChatExportError
from dataprocess.facts import load_facts
from dataprocess.memory import Memory, content_words, fact_lines

SAMPLE_FACTS = Path(__file__).resolve().parents[2] / "samples" / "facts.toml"


def test_no_knowledge_base_no_declines():
    assert decline_examples(Memory(), "maya", Rules()) == []


def test_a_question_the_facts_answer_is_not_taught_as_a_decline():
    memory = Memory.build(["favorite color: green", "i live in oakland"])
    assert answerable("what's your favorite color?", memory)
    assert not answerable("what's your favorite season?", memory)
    questions = {e["prompt"][-1]["content"] for e in decline_examples(memory, "maya", Rules(facts_repeat=1))}
    assert "what's your favorite color?" not in questions and "what's your favorite season?" in questions
    assert len(questions) == len(UNKNOWABLE) + len(NEAR_MISSES) - 1
    texted_too = {e["prompt"][-1]["content"] for e in decline_examples(memory, "maya", Rules(facts_repeat=3))}
    assert not {"whats ur fav color", "whats ur fav color again"} & texted_too and "whats ur fav season" in texted_too


def test_each_decline_is_in_the_persons_words_and_prompted_as_served():
    memory = Memory.build(fact_lines(load_facts(SAMPLE_FACTS)))
    rules = Rules(facts_repeat=2)
    examples = decline_examples(memory, "maya", rules, declines=("No CLUE lol", "  "))
    assert len(examples) == 2 * (len(UNKNOWABLE) + len(NEAR_MISSES))
    assert {e["completion"][0]["content"] for e in examples} == {"no clue lol DONE"}   # cleaned like training text
    near_miss = next(e for e in examples if e["prompt"][-1]["content"] == "what's your favorite holiday?")
    assert near_miss["prompt"] == memory.prompt("maya", "what's your favorite holiday?", (), rules)
    assert "tacos" in near_miss["prompt"][0]["content"]     # the near miss is shown: declining is learned beside it
    for question, line in NEAR_MISSES.items():   # declined beside a line on its topic that does not answer it
        asked = [e for e in examples if e["prompt"][-1]["content"] in {question, texted(question, 1)}]
        assert len(asked) == 2 and all(f"- {line}" in e["prompt"][0]["content"] for e in asked)
        assert not any(line in fact for fact in memory.facts)   # invented: never in the knowledge base
    no_lines = decline_examples(memory, "maya", Rules(facts_per_prompt=0))
    assert {e["prompt"][-1]["content"] for e in no_lines}.isdisjoint(NEAR_MISSES)   # no line shown: nothing to be near
    plain = decline_examples(memory, "maya", Rules(facts_repeat=1))
    assert {e["completion"][0]["content"][:-len(" DONE")] for e in plain} == set(DEFAULT_DECLINES)


def _every_form(question: str) -> set[str]:
    return {texted(question, repeat, number) for repeat in range(3) for number in range(len(UNKNOWABLE))}


def test_the_list_stays_apart_from_the_samples_held_out_questions_in_every_form_it_is_asked():
    facts = load_facts(SAMPLE_FACTS)
    for question in (*UNKNOWABLE, *READINGS, *NEAR_MISSES):
        for form in _every_form(question):
            for unknown in facts.unknown:      # no lesson holds what a held-out unknown asks
                assert not content_words(unknown) <= content_words(form), (form, unknown)
            for check in facts.checks:         # nor asks what a held-out paraphrase asks
                assert content_words(check.question) != content_words(form), (form, check.question)


def test_each_lesson_is_asked_as_written_then_as_texted_and_shown_what_the_texted_form_retrieves():
    assert [texted("what's your favorite color?", repeat) for repeat in range(3)] == [
        "what's your favorite color?", "whats ur fav color", "whats ur fav color again"]
    assert texted("how tall are you?", 1) == "how tall r u"
    assert texted("what's your best friend's name?", 2, 1) == "wait whats ur best friends name"
    assert texted("how tall are you?", 3) == "how tall are you?"      # every third as written again
    memory = Memory.build(fact_lines(load_facts(SAMPLE_FACTS)))
    rules = Rules(facts_repeat=3)
    examples = decline_examples(memory, "maya", rules)
    asked = [e["prompt"][-1]["content"] for e in examples]
    assert asked[:3] == ["what's your favorite color?", "whats ur fav color", "whats ur fav color again"]
    for example in examples[:3 * len(UNKNOWABLE)]:     # retrieval runs on the question as it is asked
        question = example["prompt"][-1]["content"]
        assert example["prompt"] == memory.prompt("maya", question, (), rules)
    readings = [e["prompt"][-1]["content"] for e in reading_examples(memory, "maya", rules)]
    assert {"how tall are you?", "how tall r u"} <= set(readings)


def test_each_reading_is_answered_from_the_line_it_shows():
    memory = Memory.build(fact_lines(load_facts(SAMPLE_FACTS)))
    rules = Rules(facts_repeat=3)
    readings = reading_examples(memory, "maya", rules)
    assert len(readings) == 3 * len(READINGS)
    written = {form: question for question in READINGS for form in _every_form(question)}
    by_question: dict[str, list[dict]] = {}
    for example in readings:
        by_question.setdefault(written[example["prompt"][-1]["content"]], []).append(example)
    assert set(by_question) == set(READINGS)
    for question, examples in by_question.items():
        answers = [e["completion"][0]["content"][:-len(" DONE")] for e in examples]
        variants = READINGS[question]
        assert len(set(answers)) == len(variants)          # a different line each repeat: nothing to learn by heart
        for example, answer in zip(examples, answers):
            shown = example["prompt"][0]["content"].split("what you know:\n")[1].split("\n")
            assert len(shown) <= rules.facts_per_prompt
            line = next(line for line, said, *_ in variants if said == answer)
            assert f"- {line}" in shown                      # the answer is on a line in the prompt
            asked = example["prompt"][-1]["content"]
            assert all(f"- {fact}" in shown for fact in memory.facts_for(asked, 1))  # retrieved ones kept
            assert not any(line in fact for fact in memory.facts)  # the line is never in the knowledge base
    # the same question is also declined when the line is not there: the line alone decides
    declined = {e["prompt"][-1]["content"] for e in decline_examples(memory, "maya", rules)}
    assert "what's your favorite color?" in declined and "what's your favorite color?" in by_question
    # a detail read past a line that names the thing first (as "pet: pickle, my corgi mix" must be)
    detail = by_question["what kind of cat is biscuit?"][0]["prompt"][0]["content"]
    assert detail.index("how's biscuit?") < detail.index("cat: biscuit, a grey tabby")


def test_readings_keep_the_answering_line_when_one_fact_is_shown_and_skip_what_the_facts_answer():
    memory = Memory.build(["favorite color: green", "i live in oakland"])
    readings = reading_examples(memory, "maya", Rules(facts_per_prompt=1, facts_repeat=1))
    questions = {e["prompt"][-1]["content"] for e in readings}
    assert "what's your favorite color?" not in questions   # the person's own fact answers it
    detail = next(e for e in readings if e["prompt"][-1]["content"] == "what kind of plant is gus?")
    assert detail["prompt"][0]["content"].endswith("- plant: gus, a big monstera")
    assert reading_examples(memory, "maya", Rules(facts_per_prompt=0)) == []
    assert reading_examples(Memory(), "maya", Rules()) == []


def test_a_bad_declines_list_is_one_line(tmp_path):
    path = tmp_path / "facts.toml"
    path.write_text('declines = "idk"\n[me]\nname = "maya"\n')
    with pytest.raises(ChatExportError, match="'declines' must be a list"):
        load_facts(path)
    path.write_text('declines = ["idk lol"]\n[me]\nname = "maya"\n')
    assert load_facts(path).declines == ("idk lol",)


def test_process_trains_on_declines_and_counts_them(sample_workspace):
    data = Path(sample_workspace) / "data"
    report = json.loads((data / "report.json").read_text())
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    declines = [r for r in rows if r["source"] == "declines"]
    assert declines and all(r["conversation"] == "facts" for r in declines)
    assert report["messages"]["decline_examples"] == len(declines)   # all in train: never held out
    readings = [r for r in rows if r["source"] == "readings"]
    assert readings and report["messages"]["reading_examples"] == len(readings)

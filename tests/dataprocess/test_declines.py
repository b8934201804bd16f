"""Examples that teach the twin to decline what its knowledge base does not hold."""
import json
from pathlib import Path

import pytest

from core.settings import Rules
from dataprocess.declines import DEFAULT_DECLINES, UNKNOWABLE, answerable, decline_examples
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
    questions = {e["prompt"][-1]["content"] for e in decline_examples(memory, "maya", Rules())}
    assert "what's your favorite color?" not in questions and "what's your favorite season?" in questions
    assert len(questions) == len(UNKNOWABLE) - 1


def test_each_decline_is_in_the_persons_words_and_prompted_as_served():
    memory = Memory.build(fact_lines(load_facts(SAMPLE_FACTS)))
    rules = Rules(facts_repeat=2)
    examples = decline_examples(memory, "maya", rules, declines=("No CLUE lol", "  "))
    assert len(examples) == 2 * len(UNKNOWABLE)
    assert {e["completion"][0]["content"] for e in examples} == {"no clue lol DONE"}   # cleaned like training text
    near_miss = next(e for e in examples if e["prompt"][-1]["content"] == "what's your favorite holiday?")
    assert near_miss["prompt"] == memory.prompt("maya", "what's your favorite holiday?", (), rules)
    assert "tacos" in near_miss["prompt"][0]["content"]     # the near miss is shown: declining is learned beside it
    plain = decline_examples(memory, "maya", Rules(facts_repeat=1))
    assert {e["completion"][0]["content"][:-len(" DONE")] for e in plain} == set(DEFAULT_DECLINES)


def test_the_list_stays_apart_from_the_samples_held_out_unknown_questions():
    held_out = load_facts(SAMPLE_FACTS).unknown
    for question in UNKNOWABLE:
        for unknown in held_out:
            assert not content_words(unknown) <= content_words(question), (question, unknown)


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

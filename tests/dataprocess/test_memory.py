"""The twin's memory: facts retrieved per message (BM25 candidates ranked by meaning), contact groups, and how both are stored."""
import json
from pathlib import Path

import pytest

from core.artifacts import GGUF_KEY_MEMORY
from core.settings import Rules
from dataprocess.errors import ChatExportError
from dataprocess.facts import load_facts
from dataprocess.memory import (MEANING_FLOOR, MEANING_MARGIN, Memory, fact_lines, read_contact_groups,
                                read_notes, spell_out)
from dataprocess.template import system_prompt

SAMPLE_FACTS = Path(__file__).resolve().parents[2] / "samples" / "facts.toml"


@pytest.fixture(scope="module")
def memory():
    return Memory.build(fact_lines(load_facts(SAMPLE_FACTS)), {"Mum": "family"})


# Paraphrases of questions the facts file answers, none of them written as in the file.
@pytest.mark.parametrize("question, expected", [
    ("whats ur dogs name", "pickle"),
    ("which city do u live in these days", "oakland"),
    ("what do u do for work", "ceramics studio"),
    ("where does ur sister live", "minneapolis"),
    ("how old r u", "27"),
    ("taco night??", "tacos"),
    ("whens ur bday", "august 14"),          # texting shorthand, written out for the search
    ("fav food?", "tacos"),
    ("hows ur sis", "elsa"),
])
def test_a_paraphrase_retrieves_the_fact_that_answers_it(memory, question, expected):
    found = memory.facts_for(question, 3)
    assert 1 <= len(found) <= 3
    assert any(expected in fact for fact in found), found


@pytest.mark.parametrize("small_talk", ["lol what", "omg", "hey!", "ok see u at 7"])
def test_small_talk_retrieves_nothing(memory, small_talk):
    assert memory.facts_for(small_talk, 3) == ()


def test_meaning_puts_the_fact_that_answers_first_where_bm25_did_not(memory):
    # BM25 alone ranked "where do you live? ... oakland" first: "live" is rarer in the facts than "sister"
    found = memory.facts_for("where does ur sister live", 3)
    assert "minneapolis" in found[0] and not any("oakland" in f for f in found), found


def test_a_fact_sharing_only_a_name_is_found_by_meaning(memory):
    # "dog" is not in "pet: pickle, my corgi mix"; the name is, and the meaning does the rest
    assert any("corgi" in f for f in memory.facts_for("what kind of dog is pickle", 3))


@pytest.mark.parametrize("question, expected", [
    ("what breed is ur dog", "corgi"),            # the pet line says "pet", not "dog"
    ("where do ur parents live", "duluth"),       # the family line says "mom and dad"
    ("what do u do in ur free time", "climbing"),
])
def test_a_me_line_is_found_by_the_words_its_key_is_asked_about_with(memory, question, expected):
    assert any(expected in fact for fact in memory.facts_for(question, 3))
    bare = Memory.build([(line, line) for line, _ in fact_lines(load_facts(SAMPLE_FACTS))])
    assert not any(expected in fact for fact in bare.facts_for(question, 3))   # without those words: missed


def test_the_words_a_line_is_asked_with_are_never_shown_nor_count_as_its_content(memory):
    pet = next(i for i, fact in enumerate(memory.facts) if fact.startswith("pet:"))
    assert memory.facts[pet] == "pet: pickle, my corgi mix"
    assert "dog" not in memory.fact_words[pet] and "corgi" in memory.fact_words[pet]


def test_lines_far_below_the_best_are_left_out(memory):
    # "name: maya" shares "name" with the question, but is no answer to it
    scored = memory.scored_facts("whats ur dogs name", 3)
    assert scored and "pickle" in scored[0][0]
    assert not any(f.startswith("name:") for f, _ in scored), scored
    assert all(score >= scored[0][1] - MEANING_MARGIN for _, score in scored)


@pytest.mark.parametrize("question", ["whats ur blood type", "what did u study in college", "whats ur favorite band"])
def test_a_question_no_fact_is_near_gets_no_fact(memory, question):
    assert memory.facts_for(question, 3) == ()


def test_notes_lines_are_ranked_by_meaning_with_a_floor():
    notes = Memory.build(["i drive a 2009 honda civic", "my sister elsa lives in minneapolis", "i work at a bakery"])
    assert notes.facts_for("what car do u drive", 3) == ("i drive a 2009 honda civic",)
    assert notes.facts_for("where does elsa live", 3) == ("my sister elsa lives in minneapolis",)
    assert notes.facts_for("how was work", 3) == ()     # shares "work", but is small talk
    assert all(MEANING_FLOOR <= s <= 1.0 for _, s in notes.scored_facts("the bakery on 5th closed lol", 3))


def test_shorthand_is_written_out_as_whole_words_only():
    assert spell_out("whens ur BDAY, fav food") == "whens ur birthday, favorite food"
    assert spell_out("bdays favor sister bro-in-law") == "bdays favor sister bro-in-law"


def test_the_answer_words_alone_do_not_retrieve_a_qa_fact(memory):
    # "like 4x a week its a problem" is in an answer; "busy week" must not pull it in
    assert not any("4x a week" in f for f in memory.facts_for("busy week", 3))


def test_k_bounds_the_facts_and_zero_turns_them_off(memory):
    assert len(memory.facts_for("fav food?", 1)) == 1 < len(memory.facts_for("fav food?", 3))
    assert memory.facts_for("whats ur dogs name", 0) == ()
    assert Memory().facts_for("whats ur dogs name", 3) == ()


def test_the_prompt_shows_the_contact_and_the_facts_in_the_system_line(memory):
    messages = memory.prompt("maya", "whats ur dogs name", (), Rules(), contact="Mum")
    system = messages[0]["content"]
    assert system.startswith(system_prompt("maya") + "\ntexting: mum (family)\nwhat you know:\n- ")
    assert "pickle" in system and messages[-1] == {"role": "user", "content": "whats ur dogs name"}
    # neither: the plain line the GGUF's chat template carries
    assert memory.prompt("maya", "lol what", (), Rules())[0]["content"] == system_prompt("maya")
    assert "texting" not in memory.prompt("maya", "hi", (), Rules(contact_in_prompt=False), contact="Mum")[0]["content"]


def test_contact_labels_follow_the_rules(memory):
    assert memory.contact_label("MUM") == "mum (family)"
    assert memory.contact_label("  Sam   Lee ") == "sam lee"
    assert memory.contact_label("Sam", Rules(lowercase=False)) == "Sam"
    assert memory.contact_label("Mum", Rules(anonymize_contacts=True)) == "family"  # the group, never the name
    assert memory.contact_label("Sam", Rules(anonymize_contacts=True)) is None
    assert memory.contact_label("") is None and memory.contact_label(None) is None


def test_contact_groups_file_in_both_forms(tmp_path):
    path = tmp_path / "groups.toml"
    path.write_text('mum = "family"\n"Sam Lee" = "friends"\n[work]\nmembers = ["Priya", "Dan"]\n')
    assert read_contact_groups(path) == {"mum": "family", "sam lee": "friends", "priya": "work", "dan": "work"}
    path.write_text("mum = 3\n")
    with pytest.raises(ChatExportError, match="must be a group name"):
        read_contact_groups(path)
    path.write_text("mum = \n")
    with pytest.raises(ChatExportError, match="not a valid contact groups file"):
        read_contact_groups(path)
    with pytest.raises(ChatExportError, match="not found"):
        read_contact_groups(tmp_path / "missing.toml")
    with pytest.raises(ChatExportError, match="a folder, not a contact groups file"):
        read_contact_groups(tmp_path)
    with pytest.raises(ChatExportError, match="a folder, not a facts file"):
        load_facts(tmp_path)


def test_notes_file_one_fact_a_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("# facts about me\n\ni am allergic to cats\n  my car is a blue civic  \n")
    assert read_notes(path) == ["i am allergic to cats", "my car is a blue civic"]
    path.write_bytes(b"\xff\xfe broken")
    with pytest.raises(ChatExportError, match="not UTF-8"):
        read_notes(path)
    with pytest.raises(ChatExportError, match="not found"):
        read_notes(tmp_path / "missing.txt")
    notes = Memory.build(["I am ALLERGIC to cats 🐱", "i am allergic to cats"])
    assert notes.facts == ("i am allergic to cats",)  # cleaned as training text, deduplicated
    assert notes.facts_for("do u have cats", 3) == ("i am allergic to cats",)


def test_memory_round_trips_through_its_file_and_the_gguf_metadata(memory, tmp_path):
    again = Memory.from_json(memory.to_json())
    assert again == memory
    assert again.facts_for("whats ur dogs name", 3) == memory.facts_for("whats ur dogs name", 3)
    assert Memory.from_metadata({GGUF_KEY_MEMORY: memory.to_json()}) == memory
    (tmp_path / "memory.json").write_text(memory.to_json())
    assert Memory.load(tmp_path) == memory
    assert Memory.load(tmp_path / "nowhere") == Memory()
    assert Memory.from_json("{broken") == Memory() and Memory.from_metadata({}) == Memory()
    assert json.loads(memory.to_json())["groups"] == {"mum": "family"}


def test_held_out_checks_are_read_and_never_trained_on(tmp_path):
    facts = load_facts(SAMPLE_FACTS)
    assert len(facts.checks) == 39 and len(facts.unknown) == 19
    questions = {c.question for c in facts.checks} | set(facts.unknown)
    assert not questions & {qa.question for qa in facts.qa}  # held out from the training questions
    bad = tmp_path / "facts.toml"
    bad.write_text('[[check]]\nquestion = "whats ur dogs name"\n')
    with pytest.raises(ChatExportError, match=r"\[\[check\]\] entry 1 needs"):
        load_facts(bad)
    bad.write_text('[[unknown]]\nquestions = "one"\n')
    with pytest.raises(ChatExportError, match=r"\[\[unknown\]\] entry 1 needs"):
        load_facts(bad)


def test_process_keeps_the_checks_and_the_memory_in_the_workspace(sample_workspace):
    data = Path(sample_workspace) / "data"
    checks = json.loads((data / "fact_checks.json").read_text())
    assert checks["checks"][0] == {"question": "whats ur dogs name", "answers": ["pickle"]}
    memory = Memory.load(data)
    assert any("pickle" in fact for fact in memory.facts)
    trained = (data / "train.jsonl").read_text()
    assert "whats ur dogs name" not in trained and "whats ur favorite movie" not in trained
    assert "what you know:" in trained and "texting: " in trained


def test_warm_builds_the_index_and_the_embeddings_before_the_first_message():
    fresh = Memory.build(["my dog is pickle"])
    assert "_meanings" not in fresh.__dict__
    assert fresh.warm() is fresh and fresh._meanings.shape == (2, 1, 384)
    assert fresh.facts_for("hows ur dog", 3) == ("my dog is pickle",)
    assert Memory().warm().facts == ()


def test_prepare_embeds_in_one_batch_only_the_turns_that_will_be_ranked(memory, monkeypatch):
    from dataprocess import meaning
    from dataprocess.memory import spell_out

    turns = ["where does ur sister live c7", "lol ok c7", "whats ur dogs name c7", "omw c7"]
    calls = []
    real_embed = meaning.embed
    monkeypatch.setattr(meaning, "embed", lambda texts: calls.append(list(texts)) or real_embed(texts))
    for turn in turns:
        meaning._cache.pop(spell_out(turn), None)
    expected = [memory.facts_for(turn, 3) for turn in turns]   # one embedding each, through the cache
    for turn in turns:
        meaning._cache.pop(spell_out(turn), None)
    calls.clear()
    memory.prepare(turns, 0)
    assert calls == []          # no fact is shown, so nothing is ranked
    memory.prepare(turns, 3)
    assert calls == [[spell_out("where does ur sister live c7"), spell_out("whats ur dogs name c7")]]
    assert [memory.facts_for(turn, 3) for turn in turns] == expected
    assert len(calls) == 1      # the prompts after prepare() found their embeddings cached


def test_prepare_searches_once_and_the_prompts_hold_what_one_search_each_finds(memory, monkeypatch):
    """The lines BM25 finds for a batch (prepare) are those it finds for each turn alone, and the
    prompts after prepare() use them without searching again; a turn prepare() did not see is
    searched as before."""
    turns = ["where does ur sister live", "whats ur dogs name", "how old r u again", "what do u do for work",
             "lol ok", "is pickle a corgi", "whens ur bday", "where do u live now"]
    alone = [memory.facts_for(turn, 3) for turn in turns]
    searches = []
    real = type(memory)._candidates
    monkeypatch.setattr(type(memory), "_candidates", lambda self, queries: searches.append(len(queries)) or real(self, queries))
    from dataprocess.memory import content_words

    memory.prepare(turns + ["the"], 3)
    searched = sum(1 for turn in turns if content_words(turn))
    assert searches == [searched] and searched >= 6   # one search for the batch ("the" names nothing)
    assert [memory.facts_for(turn, 3) for turn in turns] == alone
    assert searches == [searched]   # the prompts searched nothing again
    assert memory.facts_for(turns[0], 3) == alone[0] and searches == [searched]   # a turn met twice in a batch
    assert memory.facts_for("whats ur sisters name", 3) is not None and searches[-1] == 1


def test_the_embedding_cache_is_bounded_and_agrees_with_one_at_a_time(monkeypatch):
    import numpy as np

    from dataprocess import meaning

    monkeypatch.setattr(meaning, "CACHE_SIZE", 3)
    texts = [f"text number {i}" for i in range(5)]
    together = meaning.embed_cached(texts + texts[:1])
    assert together.shape == (6, 384) and np.allclose(together[0], together[5])
    assert list(meaning._cache) == texts[2:]     # the least recently used went out
    alone = np.stack([meaning.embed([t])[0] for t in texts])
    assert np.allclose(together[:5], alone, atol=1e-5)

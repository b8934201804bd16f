"""dataprocess.contact_voice: how the person writes to each contact, measured and put in the prompt."""
import json
from datetime import datetime, timedelta
from pathlib import Path

from core.settings import Rules
from dataprocess.contact_voice import MIN_REPLIES, training_replies, voice_hints
from dataprocess.memory import Memory

T0 = datetime(2024, 1, 1)


def _chat(replies: list[str]) -> list[tuple]:
    """A chat where the contact says "hey" and the person answers with each reply in turn."""
    out = []
    for i, reply in enumerate(replies):
        out.append((T0 + timedelta(minutes=2 * i), False, "hey"))
        out.append((T0 + timedelta(minutes=2 * i + 1), True, reply))
    return out


def test_a_reply_is_what_a_training_reply_is():
    messages = [(T0, False, "hey"), (T0, True, "hi"), (T0, True, "whats up"), (T0, False, "nm"), (T0, True, "ok")]
    assert training_replies(messages, Rules()) == ["hi | whats up", "ok"]
    assert training_replies([(T0, False, "hello?")], Rules()) == []
    late = [(T0, False, "hey"), (T0 + timedelta(hours=2), True, "sorry just saw this")]   # past the reply window
    assert training_replies(late, Rules()) == []
    assert training_replies(late, Rules(reply_window_minutes=180)) == ["sorry just saw this"]


def test_only_a_contact_written_to_clearly_unlike_everyone_gets_a_hint():
    n = MIN_REPLIES
    usual = ["ya sounds good lol", "omg same lol haha"]
    by_chat = {"Mom": _chat(["call me when u can, love u!!"] * n),   # ~1.4x the person's mean
               "Jo": _chat(["k"] * n),
               **{name: _chat(usual * (n // 2)) for name in ("Sam", "Priya", "Ben", "Lee")},
               "Tiny": _chat(["a very long reply written only a few times over"] * 3)}   # too few replies
    hints = voice_hints(by_chat, str.lower, Rules())
    assert hints == {"mom": "longer texts", "jo": "shorter texts"}
    # a group's members are pooled under the group's label: half of 20 each is enough together
    grouped = dict(by_chat, Dad=_chat(["call me when u can, love u!!"] * (n // 2)),
                   Mom=_chat(["call me when u can, love u!!"] * (n // 2)))
    family = {"mom": "family", "dad": "family"}
    assert voice_hints(grouped, lambda chat: family.get(chat.lower(), chat.lower()), Rules())["family"] == "longer texts"
    assert voice_hints({"Mom": _chat(["hi"] * 5)}, str.lower, Rules()) == {}   # too little history to say anything
    assert "Tiny".lower() not in hints and voice_hints(by_chat, lambda chat: None, Rules()) == {}


def test_capitals_are_said_only_where_the_data_keeps_them():
    n = MIN_REPLIES
    by_chat = {"Boss": _chat(["Sounds good, Thanks"] * n),
               **{name: _chat(["sounds good thanks"] * n) for name in ("Jo", "Sam", "Ben", "Lee", "Ana")}}
    assert voice_hints(by_chat, str.lower, Rules(lowercase=False)) == {"boss": "with capitals"}
    assert voice_hints(by_chat, str.lower, Rules(lowercase=True)) == {}


def test_the_hint_is_shown_with_the_contact_and_travels_with_the_memory(tmp_path):
    memory = Memory.build(["i live in oakland"], {"mom": "family"}).with_voices({"mom (family)": "longer texts"})
    system = memory.prompt("maya", "hi honey", (), Rules(), contact="Mom")[0]["content"]
    assert system == "you are maya. reply to texts the way maya does.\ntexting: mom (family)\nyou write to them: longer texts"
    assert "you write to them" not in memory.prompt("maya", "hi", (), Rules())[0]["content"]          # unnamed
    assert "you write to them" not in memory.prompt("maya", "hi", (), Rules(), contact="Jo")[0]["content"]
    assert "texting" not in memory.prompt("maya", "hi", (), Rules(contact_in_prompt=False), contact="Mom")[0]["content"]
    assert Memory.from_json(memory.to_json()) == memory                      # data/memory.json and the GGUF
    old = json.dumps({"facts": ["i live in oakland"], "groups": {}})         # a memory written before the hints
    assert Memory.from_json(old).voices == {}


def test_process_measures_the_sample_and_trains_with_the_hint(sample_workspace):
    data = Path(sample_workspace) / "data"
    memory = Memory.load(data)
    assert memory.voices.get("mom") == "longer texts"    # the sample's person writes to Mom at length
    report = json.loads((data / "report.json").read_text())
    assert report["contact_voices"] == dict(memory.voices)
    rows = [json.loads(line) for split in ("train", "valid", "test")
            for line in (data / f"{split}.jsonl").read_text().splitlines()]
    to_mom = [r for r in rows if r.get("contact") == "Mom"]
    assert to_mom and all("\ntexting: mom\nyou write to them: longer texts" in r["prompt"][0]["content"]
                          for r in to_mom)
    plain = [r for r in rows if r.get("contact") and r["contact"].lower() not in memory.voices]
    assert plain and not any("you write to them" in r["prompt"][0]["content"] for r in plain)


def test_a_served_prompt_to_the_contact_holds_the_same_line_as_training(sample_workspace):
    from core.workspace import Workspace
    from dataprocess.live_prompt import LivePrompt

    ws = Workspace(Path(sample_workspace))
    settings = ws.settings()
    prompts = LivePrompt(settings.persona.name, settings.data, Memory.load(ws.data_dir))
    rows = [json.loads(line) for line in ws.split_path("train").read_text().splitlines()]
    alone = [r for r in rows if r.get("contact") == "Mom" and len(r["prompt"]) == 2][:5]
    assert alone
    for row in alone:   # as twin serve, twin chat --as and the bots build it
        assert prompts.messages([], row["prompt"][1]["content"], "Mom") == row["prompt"]
        assert "you write to them" not in prompts.messages([], row["prompt"][1]["content"])[0]["content"]

"""core.settings: twin.toml read and written through dataclasses."""
import json
from datetime import datetime

import pytest

from core.errors import InputError
from core.settings import Persona, Rules, Sampling, Settings, TrainRecord
from core.workspace import Workspace


def test_round_trip_keeps_every_section(tmp_path):
    ws = Workspace(tmp_path)
    settings = Settings(persona=Persona("maya", "facts.toml"),
                        data=Rules(since=datetime(2021, 5, 1), context_turns=2, lowercase=False, split=(0.7, 0.2, 0.1)),
                        train=TrainRecord(base="smollm2-135m", base_fingerprint="ab" * 16, quant="4bit", steps=10,
                                          adapter_step=8, train_loss=1.5, eval_loss=None),
                        sampling=Sampling(temperature=0.5, max_tokens=40))
    ws.save_settings(settings)
    again = ws.settings()
    assert again == settings
    assert ws.persona() == "maya"
    assert "eval_loss" not in ws.settings_path.read_text()   # None is left out, read back as None


def test_missing_file_gives_defaults(tmp_path):
    settings = Workspace(tmp_path).settings()
    assert settings == Settings()
    assert settings.data.context_turns == 4 and settings.persona.name == "me" and settings.train is None


def test_unknown_keys_and_sections_survive_missing_ones_default(tmp_path):
    path = tmp_path / "twin.toml"
    path.write_text('[persona]\nname = "sam"\nnew_key = 1\n[future]\nx = 2\n[data]\ncontext_chars = 300\n')
    settings = Settings.load(path)
    assert settings.persona.name == "sam" and settings.data.context_chars == 300
    assert settings.data.context_turns == Rules().context_turns
    settings.save(path)
    assert "[future]" in path.read_text()


@pytest.mark.parametrize("body, key", [
    ('[data]\ncontext_turns = "four"\n', "context_turns"),
    ('[data]\nlowercase = 1\n', "lowercase"),
    ('[sampling]\ntemperature = "hot"\n', "temperature"),
    ('[data]\nsince = "yesterday"\n', "since"),
    ('[persona]\nname = 3\n', "name"),
])
def test_a_wrong_type_names_the_key(tmp_path, body, key):
    path = tmp_path / "twin.toml"
    path.write_text(body)
    with pytest.raises(InputError, match=key):
        Settings.load(path)


def test_broken_toml_is_an_input_error(tmp_path):
    path = tmp_path / "twin.toml"
    path.write_text("[data\n")
    with pytest.raises(InputError, match="not valid TOML"):
        Settings.load(path)


def test_no_absolute_path_is_written(tmp_path):
    ws = Workspace(tmp_path)
    ws.save_settings(Settings(train=TrainRecord(base="smollm2-135m", base_fingerprint="0" * 32)))
    assert str(tmp_path) not in ws.settings_path.read_text()


def test_sections_read_back_from_gguf_metadata():
    from core.artifacts import GGUF_KEY_RULES, GGUF_KEY_SAMPLING
    from core.settings import section_from_metadata

    rules = Rules(context_turns=2, lowercase=False)
    metadata = {GGUF_KEY_RULES: json.dumps(rules.to_dict())}
    assert section_from_metadata(Rules, metadata, GGUF_KEY_RULES) == rules
    assert section_from_metadata(Sampling, {}, GGUF_KEY_SAMPLING) == Sampling()
    for broken in ("{bad", '{"temperature": "hot"}', "[1, 2]"):
        assert section_from_metadata(Sampling, {GGUF_KEY_SAMPLING: broken}, GGUF_KEY_SAMPLING) == Sampling()

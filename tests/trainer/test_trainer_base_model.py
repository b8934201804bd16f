"""trainer.base_model: --base resolution, the base recorded by name + fingerprint, found again elsewhere."""
import shutil

import pytest

from core import base_ref
from core.errors import InputError
from core.settings import TrainRecord
from trainer.base_model import BaseModelError, DEFAULT_BASE, _converted, locate_base, record_base, resolve_base


@pytest.fixture(autouse=True)
def own_cache(own_twin_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub id is never looked up on the network here
    return own_twin_cache


def test_resolve_base_errors(tmp_path):
    with pytest.raises(BaseModelError, match="not found") as error:
        resolve_base(str(tmp_path / "nope"))
    assert error.value.exit_code == 2
    with pytest.raises(BaseModelError, match="config.json"):
        resolve_base(str(tmp_path))


def test_a_local_base_is_recorded_by_its_name_and_fingerprint(tiny_llama, own_cache):
    name, fingerprint = record_base(str(tiny_llama), resolve_base(str(tiny_llama)))
    assert name == tiny_llama.name and "/" not in name
    assert fingerprint == base_ref.fingerprint(tiny_llama)
    # found again on this machine from the record alone, wherever the command runs
    assert locate_base(TrainRecord(base=name, base_fingerprint=fingerprint)) == str(own_cache / "models" / f"{name}-{fingerprint[:12]}")
    assert base_ref.fingerprint(locate_base(TrainRecord(base=name, base_fingerprint=fingerprint))) == fingerprint


def test_a_copied_workspace_finds_its_base_in_the_cache_by_fingerprint(tiny_llama, tmp_path, monkeypatch):
    name, fingerprint = record_base(str(tiny_llama), str(tiny_llama))
    record = TrainRecord(base=name, base_fingerprint=fingerprint)
    monkeypatch.setenv("TWIN_CACHE", str(tmp_path / "other-machine"))  # nothing of this machine's cache
    with pytest.raises(InputError) as error:
        locate_base(record)
    assert error.value.exit_code == 2 and name in str(error.value) and "--base" in str(error.value)
    copied = tmp_path / "other-machine" / "models" / "any-name"
    shutil.copytree(tiny_llama, copied)
    assert locate_base(record) == str(copied)


def test_a_different_model_of_the_same_name_is_not_taken(tiny_llama, tmp_path, monkeypatch):
    from helpers.tiny import build_tiny_model

    name, fingerprint = record_base(str(tiny_llama), str(tiny_llama))
    monkeypatch.setenv("TWIN_CACHE", str(tmp_path / "other-machine"))
    build_tiny_model(tmp_path / "other-machine" / "models" / name, seed=1)  # same name, other weights
    with pytest.raises(BaseModelError, match="not on this machine"):
        locate_base(TrainRecord(base=name, base_fingerprint=fingerprint))


def test_base_option_overrides_the_record_and_warns_on_another_model(tiny_llama, tmp_path):
    from helpers.tiny import build_tiny_model

    other = build_tiny_model(tmp_path / "other", seed=1)
    record = TrainRecord(base=tiny_llama.name, base_fingerprint=base_ref.fingerprint(tiny_llama))
    said = []
    assert locate_base(record, override=str(tiny_llama), log=said.append) == str(tiny_llama)
    assert not said
    assert locate_base(record, override=str(other), log=said.append) == str(other)
    assert len(said) == 1 and "not the base model this twin was trained on" in said[0]


def test_embedded_name_is_found_in_the_cache(tiny_llama, own_cache):
    converted = own_cache / "models" / "SmolLM2-135M-Instruct-v2"
    shutil.copytree(tiny_llama, converted)  # stands for a conversion done before
    assert _converted(DEFAULT_BASE, print) == converted
    assert locate_base(TrainRecord(base=DEFAULT_BASE, base_fingerprint="whatever")) == str(converted)
    assert record_base(None, str(converted)) == (DEFAULT_BASE, base_ref.fingerprint(converted))


def test_nothing_recorded_says_to_train_first():
    with pytest.raises(BaseModelError, match="twin train"):
        locate_base(None)
    with pytest.raises(BaseModelError, match="twin train"):
        locate_base(TrainRecord())


def test_a_hub_id_is_kept_as_is(monkeypatch):
    record = TrainRecord(base="some-org/some-model", base_fingerprint="")
    with pytest.raises(BaseModelError, match="some-org/some-model"):
        locate_base(record)  # offline, not in any cache
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert locate_base(record) == "some-org/some-model"  # from_pretrained downloads it

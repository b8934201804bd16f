"""core.artifacts and core.workspace: names, and which GGUF is the model."""
import os

import pytest

from core import artifacts
from core.errors import InputError
from core.workspace import Workspace


def test_model_and_lora_names_cannot_be_taken_for_each_other():
    assert artifacts.model_gguf_name("q4_k_m") == "twin-Q4_K_M.gguf"
    assert artifacts.lora_gguf_name("f16") == "twin-lora-F16.gguf"
    assert artifacts.is_model_gguf("twin-Q8_0.gguf") and not artifacts.is_lora_gguf("twin-Q8_0.gguf")
    assert artifacts.is_lora_gguf("twin-lora-F16.gguf") and not artifacts.is_model_gguf("twin-lora-F16.gguf")
    with pytest.raises(ValueError):
        artifacts.model_gguf_name("lora-F16")
    with pytest.raises(ValueError):
        artifacts.model_gguf_name("../x")


def test_newest_model_gguf_skips_the_lora_adapter(tmp_path):
    ws = Workspace(tmp_path)
    ws.model_dir.mkdir()
    model = ws.model_gguf("Q8_0")
    model.write_bytes(b"GGUF")
    lora = ws.lora_gguf("F16")
    lora.write_bytes(b"GGUF")
    os.utime(model, (1, 1))          # the adapter is newer, as after `twin export --lora-only`
    (ws.model_dir / ".twin-Q4_K_M.gguf.tmp").write_bytes(b"partial")
    assert ws.newest_model_gguf() == model


def test_only_a_lora_gguf_says_so(tmp_path):
    ws = Workspace(tmp_path)
    ws.model_dir.mkdir()
    ws.lora_gguf("F16").write_bytes(b"GGUF")
    with pytest.raises(InputError, match="only a LoRA adapter"):
        ws.newest_model_gguf()


def test_missing_steps_are_input_errors_naming_the_command(tmp_path):
    ws = Workspace(tmp_path / "nope")
    with pytest.raises(InputError, match="twin process"):
        ws.require_data()
    ws = Workspace(tmp_path)
    with pytest.raises(InputError, match="twin process"):
        ws.require_data()
    with pytest.raises(InputError, match="twin train"):
        ws.require_adapter()
    with pytest.raises(InputError, match="twin export"):
        ws.newest_model_gguf()


def test_persona_name_travels_in_the_gguf_name():
    assert artifacts.persona_from_gguf_name(artifacts.gguf_model_name("maya")) == "maya"
    assert artifacts.persona_from_gguf_name("llama") is None
    assert artifacts.persona_from_gguf_name("twin-") is None

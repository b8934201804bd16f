"""The training stage on tiny random models: masking, padding token, adapter output, resume, errors."""
import json
import shutil

import pytest
from click.testing import CliRunner

from dataprocess.template import DONE
from dataprocess.workspace import Workspace
from trainer.base_model import BaseModelError, resolve_base
from trainer.quant import choose_quant
from trainer.tokens import prepare_tokenizer
from trainer.train import TrainOptions, build_trainer, run_training
from twin_cli import main


@pytest.fixture
def workspace(sample_workspace, tmp_path):
    """A private copy of the processed sample workspace, trimmed so tiny runs stay quick."""
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace, root)
    for split, keep in (("train", 64), ("valid", 8), ("test", 8)):
        path = root / "data" / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:keep]
        path.write_text("".join(lines), encoding="utf-8")
    return root


def test_loss_is_masked_on_the_prompt_only(workspace, tiny_llama):
    trainer, _, _ = build_trainer(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=1))
    tokenizer = trainer.processing_class
    row = json.loads((workspace / "data" / "train.jsonl").read_text().splitlines()[0])
    prompt_text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert ids[:len(prompt_ids)] == list(prompt_ids)
    assert all(label == -100 for label in labels[:len(prompt_ids)])
    learned = [t for t, label in zip(ids, labels) if label != -100]
    assert learned == ids[len(prompt_ids):]
    text = tokenizer.decode(learned)
    assert text.startswith(row["completion"][0]["content"])  # the reply, ending in DONE ...
    assert DONE in text and tokenizer.eos_token in text          # ... then the end-of-turn token


def test_padding_token_is_not_eos(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = tokenizer.eos_token
    assert prepare_tokenizer(tokenizer) is False
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_tokenizer_without_chat_template_gets_the_fallback(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = None
    prepare_tokenizer(tokenizer)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in rendered


def test_train_saves_adapter_tokenizer_and_settings(workspace, tiny_llama):
    summary = run_training(Workspace(workspace), TrainOptions(base=str(tiny_llama), max_steps=3, save_steps=2),
                           log=lambda *_: None)
    adapter = workspace / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert (adapter / "tokenizer.json").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_llama)
    assert summary["steps"] == 3 and summary["quant"] == "none"
    assert not list(adapter.glob(".saving-*"))
    settings = Workspace(workspace).load_settings()
    assert settings["train"]["base_path"] == str(tiny_llama) and settings["persona"]["name"] == "maya"


class _InterruptAfterSave:
    """A trainer callback that acts like Ctrl-C right after the checkpoint at ``step``."""

    def __init__(self, step):
        self.step = step

    def __getattr__(self, name):  # every other callback event: do nothing
        return lambda *args, **kwargs: None

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def _adapter_weights(root):
    from safetensors.torch import load_file

    return load_file(str(root / "adapter" / "adapter_model.safetensors"))


def test_interrupted_run_resumes_to_the_same_adapter(workspace, tiny_llama, tmp_path):
    import torch

    straight = tmp_path / "straight"
    shutil.copytree(workspace, straight)
    options = TrainOptions(base=str(tiny_llama), max_steps=4, save_steps=2)
    run_training(Workspace(straight), options, log=lambda *_: None)

    trainer, _, _ = build_trainer(Workspace(workspace), options, log=lambda *_: None)
    trainer.add_callback(_InterruptAfterSave(2))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert (workspace / "adapter" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (workspace / "adapter" / "adapter_model.safetensors").exists()
    said = []
    summary = run_training(Workspace(workspace), TrainOptions(**{**options.__dict__, "resume": True}), log=said.append)
    assert summary["steps"] == 4 and not any("from the beginning" in line for line in said)
    steps = [json.loads(line)["step"] for line in open(workspace / "adapter" / "train_log.jsonl")
             if "tokens" in json.loads(line)]
    assert steps == [1, 2, 3, 4]  # steps 1-2 before the interruption, only 3-4 after it
    resumed, reference = _adapter_weights(workspace), _adapter_weights(straight)
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(resumed[name], reference[name], atol=1e-6), name


def test_auto_quant_choice():
    assert choose_quant("auto", cuda=False, n_params=3_000_000_000) == "none"
    assert choose_quant("auto", cuda=True, n_params=3_000_000_000) == "4bit"
    assert choose_quant("auto", cuda=True, n_params=135_000_000) == "none"
    assert choose_quant("8bit", cuda=False) == "8bit"


def test_resolve_base_errors(tmp_path):
    with pytest.raises(BaseModelError, match="not found"):
        resolve_base(str(tmp_path / "nope"))
    with pytest.raises(BaseModelError, match="config.json"):
        resolve_base(str(tmp_path))


def test_cli_train_without_data_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path)])
    assert result.exit_code != 0
    assert "twin process" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "adapter").exists()


def test_cli_train_bad_flag(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workspace", str(tmp_path), "--quant", "3bit"])
    assert result.exit_code == 2 and "3bit" in result.output

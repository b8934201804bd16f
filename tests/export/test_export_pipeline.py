"""export.pipeline.run_export: a workspace's adapter -> checked GGUF + Modelfile, nothing else."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from helpers.export_models import gguf_field, gguf_reader, make_adapter


def _sampling():
    from core.settings import Sampling

    return Sampling(temperature=0.4, max_tokens=48, end_bias=0.5, separator_bias=-1.25)


def _workspace(tmp_path: Path, base: Path, persona: str = "maya"):
    from core.settings import Persona, Settings
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    make_adapter(base, ws.adapter_dir)
    ws.save_settings(Settings(persona=Persona(name=persona), sampling=_sampling()))
    return ws


def _run(ws, **options):
    from export.pipeline import ExportOptions, run_export

    lines: list[str] = []
    result = run_export(ws, ExportOptions(**options), log=lines.append)
    return result, "\n".join(lines)


def test_exports_only_the_gguf_and_modelfile_with_twin_metadata(tiny, tmp_path):
    from core.settings import Rules
    from core.terminator import StyleTokens
    from voice.llama_runtime import open_llama

    ws = _workspace(tmp_path, tiny["llama"])
    result, out = _run(ws, quant="F16", also_lora=True)
    assert sorted(p.name for p in ws.model_dir.iterdir()) == ["Modelfile", "twin-F16.gguf", "twin-lora-F16.gguf"]
    assert result.model_gguf == ws.model_gguf("F16") and result.quant == "F16"
    assert result.checks["F16"].agreement == 1.0
    assert result.checks["F16 base + LoRA"].agreement == 1.0
    assert "F16 base + LoRA: top-1 agreement" in out and "--lora" in out
    # the model, not the adapter, is the newest GGUF (what `twin serve -w` picks)
    assert ws.newest_model_gguf() == ws.model_gguf("F16")

    r = gguf_reader(ws.model_gguf("F16"))
    assert gguf_field(r, "general.name") == "twin-maya"
    assert gguf_field(r, "twin.persona") == "maya"
    assert Rules.from_dict(json.loads(gguf_field(r, "twin.data_rules"))) == Rules()
    assert json.loads(gguf_field(r, "twin.sampling")) == dataclasses.asdict(_sampling())  # biases too
    # the standard keys llama.cpp front ends read their defaults from
    assert gguf_field(r, "general.sampling.temp") == pytest.approx(0.4)
    assert gguf_field(r, "general.sampling.top_k") == _sampling().top_k
    assert gguf_field(r, "general.sampling.top_p") == pytest.approx(1.0)
    assert gguf_field(r, "general.sampling.min_p") == pytest.approx(_sampling().min_p)
    assert gguf_field(r, "general.sampling.sequence") == "penalties;top_k;top_p;min_p;temperature"
    from core.base_ref import adapter_fingerprint

    assert gguf_field(r, "twin.adapter_fingerprint") == adapter_fingerprint(ws.adapter_dir)
    # the chat template's default system line is the twin's
    template = gguf_field(r, "tokenizer.chat_template")
    assert "you are maya." in template

    modelfile = (ws.model_dir / "Modelfile").read_text()
    assert "FROM ./twin-F16.gguf" in modelfile and 'PARAMETER stop "DONE"' in modelfile
    assert 'SYSTEM """you are maya. ' in modelfile  # the persona line the twin was trained with
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    for line in ("PARAMETER temperature 0.4", "PARAMETER top_p 1.0", "PARAMETER repeat_penalty 1.0",
                 "PARAMETER num_predict 48", f"PARAMETER top_k {_sampling().top_k}",
                 f"PARAMETER min_p {_sampling().min_p}", f"PARAMETER repeat_last_n {_sampling().penalty_last_n}"):
        assert line in modelfile.splitlines()
    # the fitted biases have no Ollama parameter: the note gives llama.cpp's flags with the token ids
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny["llama"])
    found = StyleTokens.find(lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
                             tokenizer.convert_tokens_to_ids("<|im_end|>"))
    assert f"--logit-bias {found.end[0]}+0.5 --logit-bias {found.separator[0]}-1.25" in modelfile

    llm = open_llama(ws.model_gguf("F16"), n_ctx=128, n_threads=2)
    try:  # the exported GGUF chats with the tokenizer's template through llama-cpp-python
        reply = llm.create_chat_completion(messages=[{"role": "user", "content": "hey"}], max_tokens=4,
                                           temperature=0.0)
        assert reply["choices"][0]["message"]["role"] == "assistant"
    finally:
        llm.close()


def test_k_quant_checks_the_f16_it_came_from(tiny, tmp_path):
    ws = _workspace(tmp_path, tiny["mistral"])
    result, out = _run(ws, quant="Q4_K_M")
    assert result.checks["F16 (before quantizing)"].agreement == 1.0
    assert "Q4_K_M" in result.checks
    assert sorted(p.name for p in ws.model_dir.iterdir()) == ["Modelfile", "twin-Q4_K_M.gguf"]


def test_quick_verify_compares_with_the_f16_gguf_in_llama_cpp(tiny, tmp_path, monkeypatch):
    import export.reference as reference

    def no_transformers(*args, **kwargs):
        raise AssertionError("--verify quick must not run the transformers model")

    monkeypatch.setattr(reference, "streamed_logits", no_transformers)
    ws = _workspace(tmp_path, tiny["qwen2"])
    result, out = _run(ws, quant="Q8_0", verify="quick")
    assert result.checks["Q8_0 vs F16"].agreement >= 0.8
    assert sorted(p.name for p in ws.model_dir.iterdir()) == ["Modelfile", "twin-Q8_0.gguf"]


def test_keep_merged_writes_the_merged_model_and_replaces_an_old_one(tiny, tmp_path):
    ws = _workspace(tmp_path, tiny["llama"])
    ws.merged_dir.mkdir(parents=True)
    (ws.merged_dir / "stale.txt").write_text("an earlier export")
    result, out = _run(ws, quant="Q8_0", verify="off", keep_merged=True)
    assert result.merged_dir == ws.merged_dir
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in ws.merged_dir.iterdir()}
    assert not (ws.merged_dir / "stale.txt").exists()
    _run(ws, quant="Q8_0", verify="off")  # without --keep-merged: the copy no longer matches, removed
    assert sorted(p.name for p in ws.model_dir.iterdir()) == ["Modelfile", "twin-Q8_0.gguf"]


def test_verification_failure_keeps_nothing(tiny, tmp_path, monkeypatch):
    import export.verify as verify
    from export.errors import ExportError

    ws = _workspace(tmp_path, tiny["llama"])
    monkeypatch.setattr(verify, "min_agreement", lambda quant: 1.01)  # impossible to reach
    with pytest.raises(ExportError, match="verification failed"):
        _run(ws, quant="Q8_0", also_lora=True)
    assert list(ws.model_dir.iterdir()) == []


def test_base_found_by_its_fingerprint_when_the_recorded_path_is_gone(tiny, tmp_path, monkeypatch):
    from core.base_ref import fingerprint
    from core.errors import InputError
    from core.settings import TrainRecord

    base = shutil.copytree(tiny["llama"], tmp_path / "elsewhere" / "base")
    ws = _workspace(tmp_path, base)
    settings = ws.settings()
    settings.train = TrainRecord(base="my-base", base_fingerprint=fingerprint(base))
    ws.save_settings(settings)
    shutil.rmtree(base)  # the adapter config's absolute path no longer exists here
    monkeypatch.setenv("TWIN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="not on this machine"):
        _run(ws, quant="F16", verify="off")
    shutil.copytree(tiny["llama"], tmp_path / "cache" / "models" / "any-name")
    result, _ = _run(ws, quant="F16", verify="off")
    assert result.base_dir == tmp_path / "cache" / "models" / "any-name"

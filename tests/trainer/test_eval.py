"""`twin eval` on a tiny model trained a few steps: the report's figures and ranges, the decoding
defaults chosen and saved, the charts, no empty replies, the CLI's table and errors."""
import json
import shutil

import pytest
from click.testing import CliRunner

from core.settings import Sampling
from core.workspace import Workspace
from dataprocess.splits import read_split
from trainer import decoding_choice
from trainer.evaluate import EvalOptions, run_eval
from trainer.train import TrainOptions, run_training
from twin_cli import main
from voice.decoding import Decoding, greedy
from voice.hf import TokenizerVoice, generate_replies, stop_token_ids

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained_workspace(sample_workspace, tiny_llama, tmp_path_factory):
    """The sample data cut to a few examples, with a tiny model trained to overfit them."""
    root = tmp_path_factory.mktemp("eval") / "ws"
    shutil.copytree(sample_workspace, root)
    test_rows = (root / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    valid_rows = (root / "data" / "valid.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    (root / "data" / "test.jsonl").write_text("\n".join(test_rows) + "\n", encoding="utf-8")
    (root / "data" / "valid.jsonl").write_text("\n".join(valid_rows) + "\n", encoding="utf-8")
    # train on the test rows themselves (8 copies) so a few steps visibly lower their perplexity
    (root / "data" / "train.jsonl").write_text("\n".join(test_rows * 8) + "\n", encoding="utf-8")
    run_training(Workspace(root), TrainOptions(base=str(tiny_llama), max_steps=12, learning_rate=5e-3,
                                               track_replies=False, tensorboard=False),
                 log=lambda *_: None)
    return root


def test_eval_report(trained_workspace):
    ws = Workspace(trained_workspace)
    said = []
    report = run_eval(ws, EvalOptions(limit=5, max_tokens=8, choice_limit=4), log=said.append)
    saved = json.loads((trained_workspace / "eval" / "report.json").read_text())
    assert saved == report
    assert report["test_examples"] == 6 and report["generated"] == 5
    ppl = report["perplexity"]
    assert 1 < ppl["twin"] < ppl["base"]  # a few steps on these replies lowered their perplexity
    for who in ("twin", "base"):
        assert 0 <= report["termination_rate"][who] <= 1
        assert 0 <= report["loop_rate"][who] <= 1
        assert report["empty_rate"][who] == 0  # never empty: first-token bans and retries
        assert 0 <= report["classifier_accuracy"][who] <= 1
        assert len(report["classifier"][who]["folds"]) == 5
        figures = report["style"][who]
        assert all(0 <= figures[k] <= 1 for k in ("lowercase_rate", "separator_rate", "emoji_rate",
                                                   "punctuation_rate", "vocabulary_overlap"))
        assert set(report["ratios"][who]) == {"mean_chars", "separator_rate", "lowercase_rate", "emoji_rate",
                                              "punctuation_rate", "vocabulary_richness"}
    assert report["style"]["real"]["lowercase_rate"] == 1.0 and report["loop_rate"]["real"] == 0.0
    headline = report["sounds_like_you"]
    assert 0 <= headline["score"] <= 100 and "chance" in headline["meaning"]
    assert headline["score"] == round(100 * min(1, 2 * (1 - report["classifier_accuracy"]["twin"])))
    # the decoding defaults were chosen on the valid split and saved in twin.toml
    choice = report["sampling"]
    assert choice["chosen_from"] == "valid split" and len(choice["candidates"]) >= 4
    best = min(choice["candidates"], key=lambda c: c["penalty"])
    biases = ("end_bias", "separator_bias")
    # the best candidate, with its length and separator biases fitted: those of a round it measured
    assert {k: v for k, v in choice["used"].items() if k not in biases} == \
        {k: v for k, v in best["sampling"].items() if k not in biases}
    rounds = choice["bias_rounds"]
    assert rounds and rounds[0]["end_bias"] == best["sampling"]["end_bias"]
    assert (choice["used"]["end_bias"], choice["used"]["separator_bias"]) in \
        [(r["end_bias"], r["separator_bias"]) for r in rounds]
    assert all(abs(choice["used"][k]) <= 4.0 for k in biases)
    # fitted on the 4 valid prompts topped up with training prompts (a small history)
    train = read_split(ws.split_path("train"))
    assert rounds[-1]["shrink"]["prompts"] == 4 + min(decoding_choice.MIN_FIT_PROMPTS - 4, len(train)) > 4
    # style ratios against the person's habit (all their replies), and against the test replies
    assert report["person_replies"] > report["test_examples"]
    assert report["ratios"]["twin"]["mean_chars"] == round(
        report["style"]["twin"]["mean_chars"] / report["style"]["person"]["mean_chars"], 4)
    assert set(report["ratios_to_test"]["twin"]) == set(report["ratios"]["twin"])
    assert report["samples_per_prompt"] == 4  # 5 prompts: 4 replies each for the style figures
    rounds = report["classifier"]["twin"]["rounds"]   # the classifier on each round, averaged
    assert len(rounds) == 4 and report["classifier_accuracy"]["twin"] == round(sum(rounds) / 4, 4)
    assert ws.settings().sampling == Sampling.from_dict(choice["used"])
    assert any("decoding defaults saved" in line for line in said)
    assert report["can_you_tell"] is None  # nobody played yet
    # the facts file's held-out checks (samples/facts.toml [[check]] / [[unknown]]) were asked, as served
    facts = report["facts"]
    assert len(facts["checks"]) == 39 and len(facts["unknown"]) == 19 and facts["rounds"] == 3
    assert facts["accuracy"] == round(sum(c["right"] for c in facts["checks"]) / (39 * 3), 4)
    assert facts["invented_rate"] == round(sum(u["invented"] for u in facts["unknown"]) / (19 * 3), 4)
    assert all(len(c["replies"]) == 3 and all(c["replies"]) for c in facts["checks"])
    assert isinstance(report["contacts"], list)
    assert len(report["examples"]) == 5 and all(ex["twin"] and "DONE" not in ex["twin"] for ex in report["examples"])
    for chart in ("style.png", "fidelity.png"):
        assert (trained_workspace / "eval" / chart).read_bytes()[:8] == PNG


def test_eval_keeps_sampling_and_reads_can_you_tell_results(trained_workspace, tmp_path):
    from core import artifacts
    from trainer.judgements import JudgementStore

    ws_root = tmp_path / "ws"
    shutil.copytree(trained_workspace, ws_root)
    ws = Workspace(ws_root)
    settings = ws.settings()
    settings.sampling = Sampling(temperature=0.6, top_p=0.8, repeat_penalty=1.2, presence_penalty=0.4)
    ws.save_settings(settings)
    store = JudgementStore(ws_root / artifacts.JUDGEMENTS_FILE)
    for i in range(3):
        shown = store.open_round(i, "hi", "real one", "twin one")
        store.answer(shown["id"], shown["replies"].index("twin one") if i < 2 else shown["replies"].index("real one"))
    report = run_eval(ws, EvalOptions(limit=4, max_tokens=6, choose_sampling=False, base=False),
                      log=lambda *_: None)
    assert report["sampling"]["chosen_from"] == "twin.toml" and report["sampling"]["candidates"] == []
    assert report["sampling"]["used"]["presence_penalty"] == 0.4
    assert ws.settings().sampling == settings.sampling
    assert "base" not in report["termination_rate"]
    judged = report["can_you_tell"]
    assert judged["answered"] == 3 and judged["fooled"] == 2 and len(judged["ci95"]) == 2


def _always_stop_first(model, tokenizer):
    """Make the model want to end its reply at once: end-of-turn gets +100 and DONE's first piece
    +50. Returns the hook and the favoured token ids."""
    import torch

    stops, d = stop_token_ids(tokenizer, model), tokenizer("D", add_special_tokens=False)["input_ids"]
    favoured = torch.zeros(model.config.vocab_size)
    favoured[d] = 50.0
    favoured[stops] = 100.0
    tokens = stops + d
    return model.get_output_embeddings().register_forward_hook(lambda _m, _i, out: out + favoured), tokens


def test_generation_never_returns_an_empty_reply(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    prompts = [[{"role": "user", "content": text}] for text in ("hello, how are you?", "tacos tonight?")]
    bans = TokenizerVoice.of(tokenizer, model).first_banned
    assert tokenizer.eos_token_id in bans and tokenizer.convert_tokens_to_ids("<|im_end|>") in bans
    assert set(tokenizer("D", add_special_tokens=False)["input_ids"]) <= set(bans)
    hook, favoured = _always_stop_first(model, tokenizer)
    try:
        # without the bans the model would end at once or start saying DONE: this test can fail
        ids = tokenizer.apply_chat_template(prompts[0], add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        raw = model.generate(**ids, max_new_tokens=4, do_sample=False)
        assert raw[0, ids["input_ids"].shape[1]].item() in favoured
        for decoding in (greedy().with_changes(max_tokens=6), Decoding.from_sampling(Sampling(), max_tokens=6)):
            torch.manual_seed(0)
            replies = generate_replies(model, tokenizer, prompts, decoding)
            assert all(r.text.strip() for r in replies)
            assert all(r.terminated for r in replies)  # it still stops right after the first token
    finally:
        hook.remove()


def test_penalties_change_the_sampled_replies(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    prompts = [[{"role": "user", "content": "hello, how are you?"}]] * 3
    out = {}
    for name, sampling in (("plain", Sampling(temperature=0.7)),
                           ("penalised", Sampling(temperature=0.7, presence_penalty=2.0, frequency_penalty=1.0,
                                                  repeat_penalty=1.3))):
        torch.manual_seed(0)
        out[name] = [r.text for r in generate_replies(model, tokenizer, prompts, Decoding.from_sampling(sampling, max_tokens=12))]
    assert out["plain"] != out["penalised"]


def test_eval_cli_prints_the_headline_and_table(trained_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(trained_workspace, ws)
    result = CliRunner().invoke(main, ["eval", "--workspace", str(ws), "--limit", "4", "--max-tokens", "6",
                                       "--keep-sampling", "--no-base"])
    assert result.exit_code == 0, result.output
    assert "sounds like you:" in result.output and "classifier accuracy" in result.output
    assert "loop rate" in result.output and "ratio to you" in result.output and "end bias" in result.output
    assert "sampling (twin.toml)" in result.output


def test_eval_cli_errors(tmp_path, sample_workspace):
    result = CliRunner().invoke(main, ["eval", "--workspace", str(tmp_path)])
    assert result.exit_code == 2 and "twin process" in result.output and "Traceback" not in result.output
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace, ws)
    result = CliRunner().invoke(main, ["eval", "--workspace", str(ws)])
    assert result.exit_code == 2 and "no trained adapter" in result.output
    assert not (ws / "eval").exists()
    (ws / "data" / "test.jsonl").write_text("not json\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "--workspace", str(ws)])
    assert result.exit_code == 2 and "test.jsonl:1" in result.output and "Traceback" not in result.output

"""``twin eval``: can the twin be told apart from the person? Measured on the held-out splits.

For the base model and the twin (base + adapter, the same weights with the adapter off or on):

* perplexity on the real test replies (the completion tokens only, like the training loss);
* replies to the test prompts from the runtime ``twin serve`` uses (``trainer.eval_runtime``: the
  exported GGUF through llama.cpp and the server's own reply path when it is there and current,
  else transformers), decoded by the one contract (``voice.decoding``, the workspace's [sampling]
  defaults and token cap; never empty): what a client of the server gets. Compared with the
  person's real replies
  (``trainer.fidelity``): a cross-validated character n-gram classifier's accuracy at telling
  them apart (0.5 is the goal), the loop, empty and termination rates, and the headline
  "sounds like you" score;
* the style rates as twin/person: ``ratios`` against the person's habit, measured over all their
  chat replies (train, valid and test: hundreds of replies rather than the dozen a small test
  split holds), and ``ratios_to_test`` against the real replies to the same test prompts. Each
  test prompt is answered ``samples`` times for the style figures (the classifier pairs the
  first reply with the real one), so that the twin's side is not a dozen-reply estimate either;
* first, unless asked not to, the decoding defaults are chosen on the valid split
  (``trainer.decoding_choice``: a candidate setting, then the length and separator biases fitted
  to the person, shrunk by the evidence) and written to ``twin.toml`` [sampling], and into the
  exported GGUF's decoding keys and the Modelfile when the choice was made on them;
* the "Can you tell?" page's results, when friends have played (``trainer.judgements``);
* the memory figures (``trainer.memory_eval``): fact accuracy on the facts file's held-out
  paraphrases, the share of invented answers to questions no fact answers, and the style per
  contact (the twin's replies to a contact's prompts against the person's replies to them).

Written to WORKSPACE/eval/report.json and charts in WORKSPACE/eval/ (style.png, fidelity.png).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from core import artifacts
from core.atomic import atomic_file
from core.workspace import Workspace
from dataprocess.facts import CHECKS_FILE
from dataprocess.live_prompt import LivePrompt
from dataprocess.memory import Memory
from dataprocess.splits import Example, read_split

from . import fidelity, judgements
from .errors import EvalError
from .fidelity import STYLE_KEYS, style, vocabulary_overlap  # noqa: F401 - re-exported for callers
from .memory_eval import contact_figures, fact_figures

__all__ = ["EvalError", "EvalOptions", "run_eval"]


@dataclass
class EvalOptions:
    limit: int = 60               # test prompts to generate replies for
    max_tokens: int | None = None  # None: the twin's own cap ([sampling] max_tokens), as served
    seed: int = 0
    choose_sampling: bool = True  # pick [sampling] on the valid split first and save it in twin.toml
    choice_limit: int = 60        # valid prompts each candidate setting answers (the classifier
                                  # on fewer pairs is too noisy to choose by: +-0.1 at 24)
    base: bool = True             # also generate with the base model (for comparison)
    samples: int = 0              # replies per test prompt for the style figures; 0: enough for
                                  # MIN_STYLE_REPLIES (at most 4)
    runtime: str = "auto"         # auto | llama | transformers (trainer.eval_runtime)


MIN_STYLE_REPLIES = 60


def samples_per_prompt(options: EvalOptions, prompts: int) -> int:
    if options.samples:
        return options.samples
    return max(1, min(4, math.ceil(MIN_STYLE_REPLIES / max(prompts, 1))))


def _fact_checks(workspace: Workspace) -> dict:
    """The held-out fact checks ``twin process`` kept from the facts file ({} when none)."""
    path = workspace.data_dir / CHECKS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} is damaged ({exc}): run `twin process` again") from None


def load_models(workspace: Workspace, log=print):
    """The base model with the workspace's trained adapter, and its tokenizer (eval mode, fp32)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .base_model import workspace_base

    adapter = workspace.adapter_dir
    if not (adapter / artifacts.ADAPTER_CONFIG).is_file():
        raise EvalError(f"no trained adapter in {adapter}: run `twin train --workspace {workspace.root}` first")
    base_path = workspace_base(workspace, log=log)  # by name and fingerprint, on this machine
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if base.get_input_embeddings().num_embeddings < len(tokenizer):
        base.resize_token_embeddings(len(tokenizer))
    model = PeftModel.from_pretrained(base, adapter)
    model.eval()
    return model, tokenizer


def _render(tokenizer, messages, generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def perplexity(model, tokenizer, rows: list[Example]) -> float:
    """exp of the mean loss over the completion tokens of ``rows`` (prompt tokens masked), the
    reply as it is trained (ended by the end-of-turn token)."""
    import torch

    total_loss, total_tokens = 0.0, 0
    with torch.no_grad():
        for example in rows:
            row = example.training_record()
            prompt_ids = _render(tokenizer, row["prompt"], True)
            full_ids = _render(tokenizer, row["prompt"] + row["completion"], False)
            labels = torch.tensor([[-100] * len(prompt_ids) + full_ids[len(prompt_ids):]])
            count = int((labels != -100).sum())
            if count == 0:
                continue
            out = model(input_ids=torch.tensor([full_ids]), labels=labels)
            total_loss += float(out.loss) * count
            total_tokens += count
    return math.exp(total_loss / total_tokens) if total_tokens else float("nan")


def compare(replies, real: list[str], all_real: list[str], seed: int = 0, samples: int = 1) -> dict:
    """Every figure of one model's generated replies against the person's real ones.

    ``replies`` holds ``samples`` rounds of replies to the prompts of ``real`` (round after
    round); ``all_real`` is all of the person's replies. The classifier is run on each round
    paired with ``real`` and its accuracy averaged: the twin's side of the draw matters less."""
    texts = [r.text for r in replies]
    own = style(texts)
    person = style(all_real, richness_size=len(texts))     # vocabulary richness at the same size
    theirs, own_at_test_size = style(real), style(texts, richness_size=len(real))
    figures = dict(own)
    figures["length_ratio"] = round(own["mean_chars"] / person["mean_chars"], 4) if person["mean_chars"] else None
    figures["vocabulary_overlap"] = vocabulary_overlap(texts, all_real)
    classifier = fidelity.classifier_over_rounds(real, texts, seed=seed)
    return {
        "style": figures,
        "person_style": person,
        "ratios": fidelity.style_ratios(own, person),
        "ratios_to_test": fidelity.style_ratios(own_at_test_size, theirs),
        "termination_rate": round(sum(r.terminated for r in replies) / max(len(replies), 1), 4),
        "loop_rate": fidelity.loop_rate(texts),
        "empty_rate": fidelity.empty_rate(texts),
        "retried": sum(r.tries > 1 for r in replies),
        "classifier": classifier,
        "samples_per_prompt": samples,
    }


def _refresh_exported(workspace: Workspace, runtime, sampling, log) -> None:
    """Put the chosen defaults into the exported GGUF (its decoding keys) and the Modelfile, when
    the choice was made on that GGUF: the file then speaks as eval measured it, anywhere."""
    from voice.exported import refresh_sampling
    from voice.modelfile import refresh_parameters

    if runtime.model_file is None:
        return
    runtime.close()  # let go of the file before it is rewritten
    if refresh_sampling(runtime.model_file, sampling):
        log(f"decoding defaults written into {runtime.model_file} (general.sampling.* and twin.sampling)")
    refresh_parameters(workspace.model_dir / artifacts.MODELFILE, sampling)


def run_eval(workspace: Workspace, options: EvalOptions, log=print) -> dict:
    from voice.decoding import Decoding
    from voice.hf import generate_replies

    from .decoding_choice import choice_rounds, choose_sampling, fit_rows
    from .eval_runtime import ServedRuntime, open_runtime

    # each split read once: the test prompts, the valid ones, and all of them for the person's habit
    splits = {split: read_split(workspace.split_path(split), required=split == "test", error=EvalError)
              for split in artifacts.SPLITS}
    rows, valid, train = splits["test"], splits["valid"], splits["train"]
    examples = [example for split in artifacts.SPLITS for example in splits[split]]
    model, tokenizer = load_models(workspace, log)
    settings = workspace.settings()
    real = [r.reply for r in rows]
    sample, real_sample = rows[: options.limit], real[: options.limit]
    # all the person's chat replies (fact answers left out): their habit
    everything = [example.reply for example in examples if example.source == "chat"] or real
    person = style(everything)

    log(f"perplexity on {len(rows)} test replies...")
    with model.disable_adapter():
        base_ppl = perplexity(model, tokenizer, rows)
    twin_ppl = perplexity(model, tokenizer, rows)

    runtime = open_runtime(workspace, model, tokenizer, options.runtime, log=log)
    runtime_info = {"name": runtime.name, "model": runtime.model_file.name if runtime.model_file else None}
    try:
        sampling, chosen_from, table, rounds = settings.sampling, "twin.toml", [], []
        if options.max_tokens:
            sampling = dataclasses.replace(sampling, max_tokens=options.max_tokens)
        if options.choose_sampling and valid:
            choice_rows = valid[: options.choice_limit]
            bias_rows = fit_rows(choice_rows, train)
            log(f"choosing decoding defaults on {len(choice_rows)} valid prompts "
                f"({choice_rounds(len(choice_rows))} replies each per candidate, {runtime.name})...")
            sampling, table, rounds = choose_sampling(runtime, choice_rows, [r.reply for r in choice_rows],
                                                      sampling, person=person, fit_rows=bias_rows, log=log)
            chosen_from = "valid split"
            latest = workspace.settings()  # re-read: only [sampling] changes
            latest.sampling = sampling
            workspace.save_settings(latest)
            log(f"decoding defaults saved in {workspace.settings_path} [sampling]: temperature "
                f"{sampling.temperature}, top-p {sampling.top_p}, repeat penalty {sampling.repeat_penalty}, "
                f"presence penalty {sampling.presence_penalty}, end bias {sampling.end_bias:+}, "
                f"separator bias {sampling.separator_bias:+}")
            if isinstance(runtime, ServedRuntime):
                model_file = runtime.model_file
                _refresh_exported(workspace, runtime, sampling, log)
                runtime = ServedRuntime(model_file)  # the rewritten file: what is served from now on

        decoding = Decoding.from_sampling(sampling)
        samples = samples_per_prompt(options, len(sample))
        prompts = [r.messages() for r in sample] * samples
        log(f"generating {len(prompts)} replies to {len(sample)} test prompts ({runtime.name}, as served)...")
        twin_replies = runtime.replies(prompts, decoding, seed=options.seed)
        checks = _fact_checks(workspace)
        if checks:
            log("asking the held-out fact checks and unknown questions (as served: facts retrieved)...")
        served_prompts = LivePrompt(settings.persona.name, settings.data, Memory.load(workspace.data_dir))
        facts = fact_figures(runtime, served_prompts, checks, decoding, options.seed) if checks else None
    finally:
        runtime.close()
    results = {"twin": compare(twin_replies, real_sample, everything, options.seed, samples)}
    base_replies = None
    if options.base:
        with model.disable_adapter():  # the base has no GGUF: transformers, the same contract
            base_replies = generate_replies(model, tokenizer, prompts, decoding, seed=options.seed)
        results["base"] = compare(base_replies, real_sample, everything, options.seed, samples)

    accuracy = results["twin"]["classifier"]["accuracy"]
    report = {
        "test_examples": len(rows),
        "generated": len(sample),
        "max_tokens": decoding.max_tokens,
        "runtime": runtime_info,
        "seed": options.seed,
        "sounds_like_you": {"score": fidelity.sounds_like_you(accuracy), "meaning": fidelity.HEADLINE_MEANING},
        "samples_per_prompt": samples,
        "person_replies": len(everything),
        "sampling": {"used": dataclasses.asdict(sampling), "chosen_from": chosen_from, "candidates": table,
                     "bias_rounds": rounds},
        "perplexity": {"base": round(base_ppl, 3), "twin": round(twin_ppl, 3),
                       "ratio_twin_to_base": round(twin_ppl / base_ppl, 4)},
        "classifier_accuracy": {who: r["classifier"]["accuracy"] for who, r in results.items()},
        "termination_rate": {who: r["termination_rate"] for who, r in results.items()},
        "loop_rate": {"real": fidelity.loop_rate(real_sample), **{who: r["loop_rate"] for who, r in results.items()}},
        "empty_rate": {who: r["empty_rate"] for who, r in results.items()},
        "retried": {who: r["retried"] for who, r in results.items()},
        "style": {"real": style(real_sample), "person": results["twin"]["person_style"],
                  **{who: r["style"] for who, r in results.items()}},
        "ratios": {who: r["ratios"] for who, r in results.items()},
        "ratios_to_test": {who: r["ratios_to_test"] for who, r in results.items()},
        "classifier": {who: r["classifier"] for who, r in results.items()},
        "can_you_tell": judgements.summary(workspace.root / artifacts.JUDGEMENTS_FILE),
        "facts": facts,
        "contacts": contact_figures(sample, twin_replies, examples),
        "examples": [{"prompt": r.incoming, "real": real_sample[i], "twin": twin_replies[i].text,
                      **({"base": base_replies[i].text} if base_replies else {})}
                     for i, r in enumerate(sample[:10])],
        # every twin reply, in order (round after round of the test prompts): what a client of
        # `twin serve` is compared with (bench/bench_voice.py)
        "twin_replies": [{"text": r.text, "finish_reason": r.finish_reason} for r in twin_replies],
    }
    out_dir = workspace.eval_dir
    with atomic_file(out_dir / artifacts.REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    write_charts(report, out_dir)
    return report


def write_charts(report: dict, out_dir: Path) -> list[Path]:
    """``style.png``: the style rates of real vs twin vs base; ``fidelity.png``: each style rate as
    twin/real (1 is the person) and the classifier, termination, loop and empty rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"real": "#5aa469", "twin": "#4a7bd0", "base": "#aaaaaa"}
    present = [who for who in ("real", "twin", "base") if who in report["style"]]
    keys = ["lowercase_rate", "separator_rate", "emoji_rate", "punctuation_rate", "termination_rate"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    width = 0.8 / len(present)
    for n, who in enumerate(present):
        values = [report["termination_rate"].get(who, 1.0) if k == "termination_rate" else report["style"][who][k]
                  for k in keys]
        left.bar([i + (n - (len(present) - 1) / 2) * width for i in range(len(keys))], values, width, label=who,
                 color=colours[who])
        right.bar(who, report["style"][who]["mean_chars"], color=colours[who])
    left.set_xticks(range(len(keys)), [k.replace("_rate", "").replace("_", " ") for k in keys])
    left.set_ylim(0, 1.05)
    left.legend()
    left.set_title("style of replies (share of replies)")
    right.set_title("mean reply length (characters)")
    paths = [_save(fig, out_dir / "style.png", plt)]

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    models = [who for who in ("twin", "base") if who in report["ratios"]]
    width = 0.8 / len(models)
    for n, who in enumerate(models):
        values = [report["ratios"][who][k] or 0.0 for k in STYLE_KEYS]
        left.bar([i + (n - (len(models) - 1) / 2) * width for i in range(len(STYLE_KEYS))], values, width,
                 label=who, color=colours[who])
    left.axhspan(0.9, 1.1, color="#5aa469", alpha=0.2, label="within 10% of the person")
    left.axhline(1.0, color="#5aa469")
    left.set_xticks(range(len(STYLE_KEYS)), [k.replace("_rate", "").replace("_", " ") for k in STYLE_KEYS])
    left.set_title("style as twin / real (1 = the person)")
    left.legend()
    measures = ["classifier_accuracy", "termination_rate", "loop_rate", "empty_rate"]
    for n, who in enumerate(models):
        values = [report[m].get(who) or 0.0 for m in measures]
        right.bar([i + (n - (len(models) - 1) / 2) * width for i in range(len(measures))], values, width,
                  label=who, color=colours[who])
    right.axhline(0.5, color="#d0704a", linestyle="--", label="chance (classifier)")
    right.set_xticks(range(len(measures)), [m.replace("_", " ") for m in measures])
    right.set_ylim(0, 1.05)
    score = report["sounds_like_you"]["score"]
    right.set_title(f"can the twin be told apart? sounds like you: {score if score is not None else 'n/a'}/100")
    right.legend()
    paths.append(_save(fig, out_dir / "fidelity.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path

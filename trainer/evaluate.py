"""``twin eval``: how well the twin fits the person, measured on the held-out test split.

Two kinds of figures, for the base model and for the twin (base + adapter, the same weights
with the adapter switched off or on):

* perplexity on the real replies (the completion tokens only, like the training loss);
* replies generated to the test prompts, compared with the real ones: mean length ratio,
  lowercase rate, `` | `` rate, emoji rate, vocabulary overlap, and the termination rate (share
  of generations that end with DONE or the end-of-turn token before the token limit).

Written to WORKSPACE/eval/report.json and a PNG chart, WORKSPACE/eval/style.png.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from core.atomic import atomic_file
from dataprocess.clean import EMOJI_RE
from core.terminator import DONE, MESSAGE_SEPARATOR, strip_terminator
from core.workspace import Workspace

_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
STYLE_KEYS = ("mean_chars", "lowercase_rate", "separator_rate", "emoji_rate")


class EvalError(RuntimeError):
    """Evaluation cannot run (no adapter, no test split)."""


@dataclass
class EvalOptions:
    limit: int = 50            # prompts to generate replies for
    max_new_tokens: int = 48
    seed: int = 0


def style(texts: list[str]) -> dict:
    """Style figures of a list of replies."""
    n = max(len(texts), 1)
    return {
        "mean_chars": round(sum(len(t) for t in texts) / n, 2),
        "lowercase_rate": round(sum(t == t.lower() for t in texts) / n, 4),
        "separator_rate": round(sum(MESSAGE_SEPARATOR.strip() in t for t in texts) / n, 4),
        "emoji_rate": round(sum(bool(EMOJI_RE.search(t)) for t in texts) / n, 4),
    }


def vocabulary_overlap(generated: list[str], real: list[str]) -> float:
    """Share of the generated words that the person also uses in the real replies."""
    vocab = {w for t in real for w in _WORD_RE.findall(t.lower())}
    words = [w for t in generated for w in _WORD_RE.findall(t.lower())]
    return round(sum(w in vocab for w in words) / len(words), 4) if words else 0.0


def _load_test(workspace: Workspace) -> list[dict]:
    path = workspace.split_path("test")
    if not path.is_file():
        raise EvalError(f"{path} not found: run `twin process` first")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise EvalError(f"{path} holds no examples")
    return rows


def _load_models(workspace: Workspace):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = workspace.adapter_dir
    if not (adapter / "adapter_config.json").is_file():
        raise EvalError(f"no trained adapter in {adapter}: run `twin train --workspace {workspace.root}` first")
    base_path = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
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


def perplexity(model, tokenizer, rows: list[dict]) -> float:
    """exp of the mean loss over the completion tokens of ``rows`` (prompt tokens masked)."""
    import torch

    total_loss, total_tokens = 0.0, 0
    with torch.no_grad():
        for row in rows:
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


def generate_replies(model, tokenizer, rows: list[dict], options: EvalOptions) -> tuple[list[str], float]:
    """Replies to the prompts of ``rows`` (greedy) and the share that terminated on their own."""
    import torch

    replies, terminated = [], 0
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([_render(tokenizer, row["prompt"], True)])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=options.max_new_tokens, stop_strings=[DONE], tokenizer=tokenizer,
                                 eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
            new = out[0, ids.shape[1]:].tolist()
            text = tokenizer.decode(new, skip_special_tokens=True)
            if DONE in text or (new and new[-1] == eos):
                terminated += 1
            replies.append(strip_terminator(text))
    return replies, terminated / max(len(rows), 1)


def run_eval(workspace: Workspace, options: EvalOptions, log=print) -> dict:
    import torch

    torch.manual_seed(options.seed)
    rows = _load_test(workspace)
    model, tokenizer = _load_models(workspace)
    real = [strip_terminator(r["completion"][0]["content"]) for r in rows]
    sample = rows[: options.limit]
    real_sample = real[: options.limit]

    log(f"perplexity on {len(rows)} test replies...")
    with model.disable_adapter():
        base_ppl = perplexity(model, tokenizer, rows)
    twin_ppl = perplexity(model, tokenizer, rows)
    log(f"generating replies to {len(sample)} test prompts (twin and base)...")
    twin_replies, twin_term = generate_replies(model, tokenizer, sample, options)
    with model.disable_adapter():
        base_replies, base_term = generate_replies(model, tokenizer, sample, options)

    real_style = style(real_sample)

    def compared(replies):
        figures = style(replies)
        figures["length_ratio"] = round(figures["mean_chars"] / real_style["mean_chars"], 4) \
            if real_style["mean_chars"] else None
        figures["vocabulary_overlap"] = vocabulary_overlap(replies, real)
        return figures

    report = {
        "test_examples": len(rows),
        "generated": len(sample),
        "max_new_tokens": options.max_new_tokens,
        "perplexity": {"base": round(base_ppl, 3), "twin": round(twin_ppl, 3),
                       "ratio_twin_to_base": round(twin_ppl / base_ppl, 4)},
        "termination_rate": {"base": round(base_term, 4), "twin": round(twin_term, 4)},
        "style": {"real": real_style, "twin": compared(twin_replies), "base": compared(base_replies)},
        "examples": [{"prompt": r["prompt"][-1]["content"], "real": real_sample[i],
                      "twin": twin_replies[i], "base": base_replies[i]} for i, r in enumerate(sample[:10])],
    }
    out_dir = workspace.eval_dir
    with atomic_file(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    write_chart(report, out_dir / "style.png")
    return report


def write_chart(report: dict, path: Path) -> Path:
    """Bar chart of the style figures: real replies vs twin vs base."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["lowercase_rate", "separator_rate", "emoji_rate", "termination_rate"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    width = 0.27
    for offset, who, colour in ((-width, "real", "#5aa469"), (0, "twin", "#4a7bd0"), (width, "base", "#aaaaaa")):
        values = [report["termination_rate"].get(who, 1.0 if who == "real" else 0.0) if k == "termination_rate"
                  else report["style"][who][k] for k in keys]
        left.bar([i + offset for i in range(len(keys))], values, width, label=who, color=colour)
        right.bar(who, report["style"][who]["mean_chars"], color=colour)
    left.set_xticks(range(len(keys)), [k.replace("_", " ") for k in keys])
    left.set_ylim(0, 1.05)
    left.legend()
    left.set_title("style of replies (share of replies)")
    right.set_title("mean reply length (characters)")
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path

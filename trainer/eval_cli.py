"""The ``twin eval`` command: the held-out splits -> WORKSPACE/eval/report.json + charts, and the
decoding defaults chosen on the valid split -> twin.toml [sampling]."""
from __future__ import annotations

from pathlib import Path

import click

from core.errors import cli_errors
from core.workspace import Workspace

from .evaluate import EvalOptions, run_eval
from .fidelity import STYLE_KEYS


@click.command("eval")
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace with data (twin process) and an adapter (twin train).")
@click.option("--limit", type=click.IntRange(min=1), default=60, show_default=True,
              help="Test prompts to generate replies for (perplexity uses the whole split).")
@click.option("--max-tokens", type=click.IntRange(min=1),
              help="Longest reply in tokens [default: the twin's own cap, [sampling] max_tokens, as served].")
@click.option("--runtime", type=click.Choice(("auto", "llama", "transformers")), default="auto", show_default=True,
              help="What the twin's replies are generated with: auto = the exported GGUF through llama.cpp, as "
                   "`twin serve` answers, when it was exported from the current adapter, else transformers.")
@click.option("--choose-sampling/--keep-sampling", default=True, show_default=True,
              help="Choose the decoding defaults (temperature, top-p, penalties) on the valid split and save "
                   "them in twin.toml [sampling], or keep the ones there.")
@click.option("--base/--no-base", default=True, show_default=True,
              help="Also generate with the base model, for comparison.")
@click.option("--samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Replies per test prompt for the style figures (0: enough for 60 replies, at most 4).")
@click.option("--seed", type=int, default=0, show_default=True)
def eval_command(workspace, limit, max_tokens, runtime, choose_sampling, base, samples, seed):
    """Can the twin be told apart from you? Classifier, style, loops and perplexity on the test split."""
    options = EvalOptions(limit=limit, max_tokens=max_tokens, seed=seed, choose_sampling=choose_sampling,
                          base=base, samples=samples, runtime=runtime)
    with cli_errors():
        report = run_eval(Workspace(workspace), options, log=click.echo)
    click.echo(summary_table(report))
    click.echo(f"\nreport: {Path(workspace) / 'eval' / 'report.json'} (+ charts: style.png, fidelity.png); "
               f"replies from {report['runtime']['model'] or report['runtime']['name']}")


def _cell(value, fmt: str = ".2f") -> str:
    return f"{value:>10{fmt}}" if isinstance(value, (int, float)) else f"{'':>10}"


def summary_table(report: dict) -> str:
    """The printed summary: the headline first, then each figure for real / twin / base."""
    who = [w for w in ("twin", "base") if w in report["style"]]
    score = report["sounds_like_you"]["score"]
    lines = [f"\nsounds like you: {score if score is not None else 'n/a'}/100  "
             f"({report['sounds_like_you']['meaning']})",
             f"\n{'':24}{'you':>10}" + "".join(f"{w:>10}" for w in who)]

    def row(name, real, values, fmt=".2f"):
        lines.append(f"{name:24}{_cell(real, fmt)}" + "".join(_cell(v, fmt) for v in values))

    row("classifier accuracy", None, [report["classifier_accuracy"].get(w) for w in who])
    row("perplexity", None, [report["perplexity"].get(w) for w in who])
    row("termination rate", None, [report["termination_rate"].get(w) for w in who])
    row("loop rate", report["loop_rate"].get("real"), [report["loop_rate"].get(w) for w in who])
    row("empty rate", None, [report["empty_rate"].get(w) for w in who])
    # style: "you" is the person over all their replies; ratios are twin/you (1 = the person)
    for key in STYLE_KEYS:
        row(key.replace("_", " "), report["style"]["person"][key], [report["style"][w][key] for w in who])
        row("  ratio to you", None, [report["ratios"][w][key] for w in who])
    row("vocabulary overlap", None, [report["style"][w]["vocabulary_overlap"] for w in who])
    judged = report.get("can_you_tell")
    if judged and judged["answered"]:
        low, high = judged["ci95"]
        lines.append(f"\ncan you tell? friends fooled in {judged['fooled']} of {judged['answered']} rounds: "
                     f"{judged['share_fooled']:.0%} (95% CI {low:.0%}-{high:.0%}; 50% means they cannot tell)")
    facts = report.get("facts")
    if facts:
        if "accuracy" in facts:
            lines.append(f"\nfacts: {facts['accuracy']:.0%} of replies to {len(facts['checks'])} held-out "
                         f"paraphrases ({facts['rounds']} each) hold the fact")
            if facts.get("shown_rate") is not None:
                shown = sum(1 for c in facts["checks"] if c.get("shown"))
                reading = facts.get("accuracy_when_shown")
                lines.append(f"  the answer was on a line shown for {shown} of {len(facts['checks'])} "
                             + (f"(replies hold it in {reading:.0%} of those)" if reading is not None else "(none)"))
        if "invented_rate" in facts:
            lines.append(f"invented: {facts['invented_rate']:.0%} of replies to {len(facts['unknown'])} questions "
                         "no fact answers make an answer up (heuristic)")
            if "wrong_fact_rate" in facts:
                lines.append(f"wrong fact: {facts['wrong_fact_rate']:.0%} answer them with a fact that does not fit")
    if report.get("contacts"):
        lines.append(f"\n{'per contact':24}{'prompts':>8}{'length you/twin':>18}{'capitals you/twin':>20}")
        for c in report["contacts"]:
            lines.append(f"{c['contact'][:23]:24}{c['test_prompts']:>8}"
                         f"{c['person']['mean_chars']:>9.1f}/{c['twin']['mean_chars']:<8.1f}"
                         f"{c['person']['capitals_rate']:>11.2f}/{c['twin']['capitals_rate']:<8.2f}")
    used = report["sampling"]["used"]
    lines.append(f"\nsampling ({report['sampling']['chosen_from']}): temperature {used['temperature']}, "
                 f"top-p {used['top_p']}, repeat penalty {used['repeat_penalty']}, "
                 f"presence penalty {used['presence_penalty']}, end bias {used['end_bias']:+}, "
                 f"separator bias {used['separator_bias']:+}")
    return "\n".join(lines)

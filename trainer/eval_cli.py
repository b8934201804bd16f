"""The ``twin eval`` command: the test split -> WORKSPACE/eval/report.json + style.png."""
from __future__ import annotations

from pathlib import Path

import click

from core.workspace import Workspace

from .evaluate import STYLE_KEYS, EvalError, EvalOptions, run_eval


@click.command("eval")
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace with data (twin process) and an adapter (twin train).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Test prompts to generate replies for (perplexity uses the whole split).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
def eval_command(workspace, limit, max_new_tokens):
    """Compare the twin with the base model and the real replies on the test split."""
    try:
        report = run_eval(Workspace(workspace), EvalOptions(limit=limit, max_new_tokens=max_new_tokens),
                          log=click.echo)
    except EvalError as exc:
        raise click.ClickException(str(exc)) from None
    ppl, term = report["perplexity"], report["termination_rate"]
    click.echo(f"\n{'':22}{'real':>10}{'twin':>10}{'base':>10}")
    click.echo(f"{'perplexity':22}{'':>10}{ppl['twin']:>10.2f}{ppl['base']:>10.2f}")
    click.echo(f"{'termination rate':22}{'':>10}{term['twin']:>10.2f}{term['base']:>10.2f}")
    for key in (*STYLE_KEYS, "length_ratio", "vocabulary_overlap"):
        real = report["style"]["real"].get(key)
        cells = [f"{real:>10.2f}" if real is not None else f"{'':>10}"]
        cells += [f"{report['style'][who][key]:>10.2f}" for who in ("twin", "base")]
        click.echo(f"{key.replace('_', ' '):22}" + "".join(cells))
    click.echo(f"\nreport: {Path(workspace) / 'eval' / 'report.json'} (+ chart: style.png)")

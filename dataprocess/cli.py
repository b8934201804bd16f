"""The ``twin process`` command: exports -> WORKSPACE/data/*.jsonl."""
from __future__ import annotations

from pathlib import Path

import click

from core.artifacts import FEEDBACK_FILE
from core.errors import cli_errors
from core.settings import Rules
from core.workspace import Workspace

from .pipeline import run_process
from .readers import FORMATS
from .readers.base import path_text

RULES = Rules()  # the defaults every option below shows and uses
SHOWN_NOTES = 5  # reader notes printed (all of them, up to 200, are in report.json)


def _parse_split(ctx, param, value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in value.split("/"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 0 for p in parts) or parts[0] <= 0:
        raise click.BadParameter("give three shares like 80/10/10 (train/valid/test)")
    return parts


def _split_text(split: tuple[float, float, float]) -> str:
    return "/".join(f"{share * 100:g}" for share in split)


def reading_options(func):
    """How exports are read: the options ``twin process`` and ``twin update`` share."""
    func = click.option("--day-first/--month-first", "dayfirst", default=None,
                        help="Read dates like 05/06/2024 as day/month (or month/day); decided from each file "
                             "when not given (WhatsApp: the summary says which order was chosen and why).")(func)
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
                        help="Export format; detected from the file when 'auto'.")(func)


@click.command("process")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--workspace", "-w", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Workspace directory (created if missing).")
@reading_options
@click.option("--me", help="Your name as the twin's persona (and in exports that do not say who you are).")
@click.option("--facts", "facts_path", type=click.Path(dir_okay=False, path_type=Path),
              help="'Facts about me' TOML file turned into question/answer examples.")
@click.option("--notes", "notes_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A notes file of facts about you, one a line: with --facts, the twin's knowledge base "
                   "(the facts relevant to each message are put in its prompt).")
@click.option("--contact-groups", "contact_groups_path", type=click.Path(dir_okay=False, path_type=Path),
              help='TOML naming your contacts\' groups (mum = "family"): the prompt says who the twin texts.')
@click.option("--facts-per-prompt", type=click.IntRange(min=0), default=RULES.facts_per_prompt, show_default=True,
              help="Facts retrieved into each prompt (0: none).")
@click.option("--contact-in-prompt/--no-contact-in-prompt", default=RULES.contact_in_prompt, show_default=True,
              help="Say in the prompt who the twin is texting (the chat's name, or its group).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=RULES.since.strftime("%Y-%m-%d"), show_default=True,
              help="Keep messages on or after this date.")
@click.option("--group-chats/--no-group-chats", default=RULES.group_chats, show_default=True,
              help="Also learn from group chats (speaker names go into the context).")
@click.option("--top-contacts", type=click.IntRange(min=0), default=RULES.top_contacts, show_default=True,
              help="Keep only the N most-messaged chats (0 = all).")
@click.option("--reply-window", type=click.FloatRange(min=0, min_open=True), default=RULES.reply_window_minutes, show_default=True,
              help="Minutes within which my message counts as a reply.")
@click.option("--context-turns", type=click.IntRange(min=0), default=RULES.context_turns, show_default=True,
              help="Earlier turns of the conversation given as context.")
@click.option("--lowercase/--keep-case", default=RULES.lowercase, show_default=True)
@click.option("--replace-urls/--keep-urls", default=RULES.replace_urls, show_default=True, help="URLs become the word 'link'.")
@click.option("--strip-emoji/--keep-emoji", default=RULES.strip_emoji, show_default=True)
@click.option("--squash-repeats/--keep-repeats", default=RULES.squash_repeats, show_default=True,
              help="Characters repeated more than 3 times are cut to 3.")
@click.option("--scrub/--no-scrub", default=RULES.scrub_personal_data, show_default=True,
              help="Replace emails, phone/card/IBAN/account numbers and street addresses with placeholders.")
@click.option("--anonymize-contacts", is_flag=True, default=RULES.anonymize_contacts, help="Replace contacts' names in their messages with <contact>.")
@click.option("--max-message-chars", type=click.IntRange(min=0), default=RULES.max_message_chars, show_default=True,
              help="Drop messages longer than this (0 = no cap).")
@click.option("--max-reply-chars", type=click.IntRange(min=1), default=RULES.max_reply_chars, show_default=True,
              help="Drop examples whose reply is longer than this.")
@click.option("--context-chars", type=click.IntRange(min=0), default=RULES.context_chars, show_default=True,
              help="Cap on the characters of context turns.")
@click.option("--session-gap", type=click.FloatRange(min=0, min_open=True), default=RULES.session_gap_hours, show_default=True,
              help="Hours of silence that start a new conversation (context never crosses it).")
@click.option("--facts-repeat", type=click.IntRange(min=0), default=RULES.facts_repeat, show_default=True,
              help="How often each fact question/answer is repeated in train.")
@click.option("--dedupe/--keep-duplicates", default=RULES.dedupe, show_default=True)
@click.option("--split", "split", default=_split_text(RULES.split), show_default=True, callback=_parse_split,
              help="Train/valid/test shares, split by conversation.")
@click.option("--feedback/--no-feedback", default=False, show_default=True,
              help="Add the replies rated up through the server (WORKSPACE/feedback.sqlite) to train.")
@click.option("--feedback-db", type=click.Path(dir_okay=False, path_type=Path),
              help="Read ratings from this SQLite file instead of WORKSPACE/feedback.sqlite.")
@click.option("--seed", type=int, default=RULES.seed, show_default=True, help="Seed of the train/valid/test split.")
def process_command(inputs, workspace, fmt, dayfirst, me, facts_path, notes_path, contact_groups_path,
                    facts_per_prompt, contact_in_prompt, since, group_chats, top_contacts, reply_window,
                    context_turns, lowercase, replace_urls, strip_emoji, squash_repeats, scrub, anonymize_contacts,
                    max_message_chars, max_reply_chars, context_chars, session_gap, facts_repeat, dedupe, split, feedback, feedback_db, seed):
    """Turn chat exports into training data in WORKSPACE/data (+ report.json and charts)."""
    rules = Rules(since=since, group_chats=group_chats, top_contacts=top_contacts,
                  reply_window_minutes=reply_window, context_turns=context_turns, lowercase=lowercase,
                  replace_urls=replace_urls, strip_emoji=strip_emoji, squash_repeats=squash_repeats,
                  scrub_personal_data=scrub, anonymize_contacts=anonymize_contacts,
                  max_message_chars=max_message_chars, max_reply_chars=max_reply_chars, context_chars=context_chars,
                  session_gap_hours=session_gap, facts_repeat=facts_repeat, dedupe=dedupe, split=split, seed=seed,
                  facts_per_prompt=facts_per_prompt, contact_in_prompt=contact_in_prompt)
    feedback_path = (feedback_db or Path(workspace) / FEEDBACK_FILE) if feedback else None
    with cli_errors("interrupted: nothing was written; run the same command again"):
        result = run_process(list(inputs), Workspace(workspace), fmt=fmt, me=me, facts_path=facts_path,
                             rules=rules, feedback_path=feedback_path, dayfirst=dayfirst,
                             notes_path=notes_path, contact_groups_path=contact_groups_path)
    stats = result.stats
    click.echo(f"read {stats.get('read', 0)} messages, kept {stats.get('kept_messages', 0)} "
               f"from {stats.get('kept_chats', 0)} chats (persona: {result.persona})")
    dropped = {k[len('dropped_'):]: v for k, v in sorted(stats.items()) if k.startswith("dropped_") and v}
    if dropped:
        click.echo("dropped: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in dropped.items()))
    for note in result.notes[:SHOWN_NOTES]:
        click.echo(note)
    if len(result.notes) > SHOWN_NOTES:
        click.echo(f"... and {len(result.notes) - SHOWN_NOTES} more notes in report.json")
    if result.skipped:
        click.echo(f"skipped {len(result.skipped)} malformed records, e.g. "
                   + "; ".join(f"{f}:{line}" for f, line, _ in result.skipped[:3]))
    if stats.get("feedback_examples"):
        click.echo(f"added {stats['feedback_examples']} replies rated up through the server to train")
    tokens = result.report["tokens"]
    click.echo("examples: " + ", ".join(f"{k} {v} ({tokens[k]:,} {result.report['token_unit']})"
                                        for k, v in result.counts.items()) + f" -> {path_text(Path(workspace) / 'data')}")
    reply = result.report["reply_chars"]
    click.echo(f"my replies: mean {reply['mean']} chars, median {reply['median']}; top words: "
               + ", ".join(w for w, _ in result.report["top_words"][:8]))
    click.echo(f"report: {path_text(Path(workspace) / 'data' / 'report.json')}"
               + (f" (+ charts: {', '.join(p.name for p in result.charts)})" if result.charts else ""))

"""``twin process`` end to end: read exports, apply the rules, write splits and a report."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from core.artifacts import SPLITS
from core.atomic import write_atomic
from core.settings import Persona, Rules
from core.workspace import Workspace

from .conversations import Stats, pairs_from_chat, select_messages
from .errors import ChatExportError
from .examples import example_from_pair, examples_from_facts
from .facts import load_facts
from .feedback import good_replies
from .forked import ForkedCall
from .readers import read_export
from .report import ReplyStats, Tally, build_report, cached_tokenizer, write_charts
from .spool import ExampleSpool, token_sizes, word_sizes


@dataclass
class ProcessResult:
    counts: dict[str, int]
    stats: dict[str, int]
    skipped: list[tuple[str, int, str]]
    persona: str
    report: dict
    charts: list[Path]


FORK_AFTER = 32_768  # kept messages from which counting the reply figures aside is worth a process


def count_replies(by_chat: dict[str, list], rules: Rules) -> ReplyStats:
    """The reply figures of every pair the chats make (duplicates included)."""
    replies = ReplyStats()
    scratch = Stats()  # the pairing counts are the caller's to keep
    for chat in sorted(by_chat):
        for pair in pairs_from_chat(chat, by_chat[chat], rules, scratch):
            replies.add(pair.reply)
    return replies


def run_process(inputs: list[Path], workspace: Workspace, *, fmt: str | None = None,
                me: str | None = None, facts_path: Path | None = None,
                rules: Rules | None = None, make_charts: bool = True,
                feedback_path: Path | None = None) -> ProcessResult:
    """Turn export files into ``data/{train,valid,test}.jsonl`` and ``data/report.json``.

    Replies rated up in the feedback database at ``feedback_path`` (the server's
    WORKSPACE/feedback.sqlite), if it exists, are added to train.

    Nothing is written when no training example can be made (ChatExportError says why).
    """
    rules = rules or Rules()
    facts = load_facts(facts_path) if facts_path else None
    persona = me or (facts.name if facts else None) or "me"
    stats, skipped = Stats(), []
    tally = Tally()
    streams = (read_export(path, fmt=fmt, me=me, skipped=skipped, require_owner=True) for path in inputs)
    by_chat = select_messages(tally.watch(itertools.chain.from_iterable(streams)), rules, stats)
    if stats["read"] == 0:
        raise ChatExportError("no messages could be read from the input")

    # Examples go to a spool on disk as they are made (memory stays bounded at any history
    # size); each chat's messages are let go as soon as its pairs are made. The report's reply
    # figures are counted meanwhile on a second core (a forked copy pairs the same messages); the
    # replies of examples that turn out to be duplicates are taken out of them afterwards.
    tokenizer = cached_tokenizer()
    duplicates = ReplyStats()
    with ForkedCall(count_replies, by_chat, rules, parallel=stats["kept_messages"] >= FORK_AFTER) as counting, \
            ExampleSpool(dedupe=rules.dedupe, sizes=token_sizes(tokenizer) if tokenizer else word_sizes) as spool:
        for chat in sorted(by_chat):
            for pair in pairs_from_chat(chat, by_chat.pop(chat) if counting.forked else by_chat[chat], rules, stats):
                if not spool.add(example_from_pair(pair, persona)):
                    duplicates.add(pair.reply)
        replies = counting.result()
        replies.subtract(duplicates)
        if rules.dedupe:
            stats["dropped_duplicate"] = spool.duplicates
        if not spool.count:
            raise ChatExportError("no reply pairs found: no message of yours answers a contact within "
                                  f"{rules.reply_window_minutes:g} minutes after the rules were applied "
                                  "(check --me, --since and --group-chats)")
        extra_train = examples_from_facts(facts, persona, rules) if facts else []
        if feedback_path is not None:
            rated = good_replies(feedback_path, rules, persona)
            stats["feedback_examples"] = len(rated)
            extra_train.extend(rated)
        counts, tokens = spool.write_splits({name: workspace.split_path(name) for name in SPLITS},
                                            rules.split, rules.seed, extra_train)
    report = build_report(persona=persona, inputs=[str(p) for p in inputs], rules=rules.to_dict(),
                          stats=dict(stats), tally=tally, examples=counts, tokens=tokens,
                          token_unit="tokens" if tokenizer else "words", replies=replies, skipped=skipped)
    write_atomic(workspace.data_dir / "report.json",
                 json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8"))
    charts = write_charts(report, workspace.data_dir) if make_charts else []
    settings = workspace.settings()
    settings.persona = Persona(name=persona, facts=Path(facts_path).name if facts_path else None)
    settings.data = rules
    workspace.save_settings(settings)
    return ProcessResult(counts=counts, stats=dict(stats), skipped=skipped, persona=persona,
                         report=report, charts=charts)

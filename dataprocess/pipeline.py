"""``twin process`` end to end: read exports, apply the rules, write splits and a report.

What the run writes (the splits, ``report.json``, the charts) is made in a hidden staging folder
inside ``WORKSPACE/data`` and moved into place only once all of it is there, then ``twin.toml``
is saved: a failure at any point leaves the workspace as it was (folders this run created are
removed again), never splits without their report.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from core.artifacts import SPLITS
from core.atomic import write_atomic
from core.settings import Persona, Rules
from core.workspace import Workspace

from .contact_voice import voice_hints
from .conversations import Stats, pairs_from_chat, select_messages
from .errors import ChatExportError, printable
from .declines import decline_examples, reading_examples
from .examples import example_from_pair, examples_from_facts
from .facts import CHECKS_FILE, load_facts
from .feedback import good_replies
from .forked import ForkedCall
from .memory import MEMORY_FILE, Memory, fact_lines, read_contact_groups, read_notes
from .read_ahead import READ_AHEAD_BYTES, input_bytes, read_ahead
from .readers import read_export
from .readers.base import path_text
from .report import (CHARTS, EARLY_CHARTS, REPLY_CHARTS, ReplyStats, Tally, activity, build_report,
                     cached_tokenizer, reply_figures, write_charts)
from .seen import SEEN_FILE, NewOnly, NothingNew, Recorder, SeenIndex
from .spool import ExampleSpool, token_sizes, word_sizes
from .timing import TimingStats


@dataclass
class ProcessResult:
    counts: dict[str, int]
    stats: dict[str, int]
    skipped: list[tuple[str, int, str]]
    persona: str
    report: dict
    charts: list[Path]
    notes: list[str] = field(default_factory=list)  # what the readers said (date order chosen, repairs)


FORK_AFTER = 32_768  # kept messages from which counting the reply figures aside is worth a process
PROMPT_BATCH = 256    # pairs whose incoming turns are embedded together (memory.prepare) before their prompts


def count_replies(by_chat: dict[str, list], rules: Rules, charts_to: Path | None = None,
                  activity: dict | None = None) -> tuple[ReplyStats, TimingStats, list[Path]]:
    """The reply figures of every pair the chats make (duplicates included), and the person's
    timing (for `twin bot`): neither needs the examples, so both are counted on the second core.
    With ``charts_to``, the charts of the timing and of ``activity`` (the report's) are drawn
    there too (report.EARLY_CHARTS); their paths come back third."""
    replies = ReplyStats()
    timing = TimingStats(rules, seed=rules.seed)
    scratch = Stats()  # the pairing counts are the caller's to keep
    for chat in sorted(by_chat):
        timing.add(by_chat[chat])
        for pair in pairs_from_chat(chat, by_chat[chat], rules, scratch):
            replies.add(pair.reply)
    charts = []
    if charts_to is not None:
        charts = write_charts({"activity": activity, "timing": timing.report()}, charts_to, EARLY_CHARTS)
    return replies, timing, charts


def run_process(inputs: list[Path], workspace: Workspace, *, fmt: str | None = None,
                me: str | None = None, facts_path: Path | None = None,
                rules: Rules | None = None, make_charts: bool = True,
                feedback_path: Path | None = None, dayfirst: bool | None = None,
                seen: SeenIndex | None = None, persona: str | None = None,
                notes_path: Path | None = None, contact_groups_path: Path | None = None) -> ProcessResult:
    """Turn export files into ``data/{train,valid,test}.jsonl`` and ``data/report.json``.

    Replies rated up in the feedback database at ``feedback_path`` (the server's
    WORKSPACE/feedback.sqlite), if it exists, are added to train. ``dayfirst`` forces the
    day/month order of exports that leave it open (see :func:`~dataprocess.readers.read_export`).
    The fingerprints of every message read go to ``data/seen.npy`` (dataprocess.seen); with
    ``seen`` (``twin update``) the messages already in it are dropped first (counted in stats as
    ``new_messages`` / ``duplicate_messages``) and the file written holds both; ``persona``
    (``twin update``: the workspace's) names the twin in the prompts instead of ``me`` / the facts.
    The knowledge base (the facts file's lines and ``notes_path``'s) and the contact groups of
    ``contact_groups_path`` go to ``data/memory.json`` (``dataprocess.memory``); every prompt holds
    the facts retrieved for its incoming turn and the chat's contact, with how the person writes
    to that contact where it differs (``dataprocess.contact_voice``, measured on this history;
    ``twin update`` keeps the workspace's). When none of the three is given, ``twin update`` keeps
    the workspace's memory.

    Nothing is written when no training example can be made (ChatExportError says why), nor when
    anything fails before the end (see the module docstring).
    """
    rules = rules or Rules()
    facts = load_facts(facts_path) if facts_path else None
    persona = printable(persona or me or (facts.name if facts else None) or "me")
    current = Memory.load(workspace.data_dir) if seen is not None else None   # the twin's, on an update
    if current is not None and not (facts_path or notes_path or contact_groups_path):
        memory = current
    else:
        memory = Memory.build(fact_lines(facts) + (read_notes(notes_path) if notes_path else []),
                              read_contact_groups(contact_groups_path) if contact_groups_path else None,
                              lowercase=rules.lowercase)
    stats, skipped, notes = Stats(), [], []
    tally = Tally()

    def read_all():
        return itertools.chain.from_iterable(
            read_export(path, fmt=fmt, me=me, skipped=skipped, require_owner=True, dayfirst=dayfirst, notes=notes)
            for path in inputs)

    # a long history is parsed on a second core while this one fingerprints, tallies and selects
    messages = read_ahead(read_all, (skipped, notes), parallel=input_bytes(inputs) >= READ_AHEAD_BYTES)
    recorder = Recorder() if seen is None else NewOnly(seen)
    by_chat = select_messages(tally.watch(recorder.watch(messages)), rules, stats)
    if seen is None and rules.contact_in_prompt:   # how the person writes to each contact, for the prompts
        memory = memory.with_voices(voice_hints(by_chat, lambda chat: memory.contact_label(chat, rules), rules))
    elif current is not None:  # an update's new messages alone are too few to tell: the twin's hints stay
        memory = memory.with_voices(current.voices)
    if seen is not None:
        stats["new_messages"], stats["duplicate_messages"] = recorder.new, recorder.duplicates
    if stats["read"] == 0:
        if seen is not None and recorder.duplicates:
            raise NothingNew(f"nothing new: all {recorder.duplicates} messages were processed before")
        raise ChatExportError("no messages could be read from the input")

    # Examples go to a spool on disk as they are made (memory stays bounded at any history
    # size); each chat's messages are let go as soon as its pairs are made. The report's reply
    # figures and the person's timing are counted meanwhile on a second core (a forked copy pairs
    # the same messages, then draws the activity and timing charts); the replies of examples that
    # turn out to be duplicates are taken out of them afterwards, and the charts of the replies
    # are drawn by another forked copy while the splits are written.
    tokenizer = cached_tokenizer(workspace)
    duplicates = ReplyStats()
    aside = stats["kept_messages"] >= FORK_AFTER  # worth a second process
    with _staging(workspace) as staging, \
            ForkedCall(count_replies, by_chat, rules, staging if make_charts else None, activity(tally),
                       parallel=aside, task="counting the reply figures") as counting, \
            ExampleSpool(dedupe=rules.dedupe, sizes=token_sizes(tokenizer) if tokenizer else word_sizes) as spool, \
            contextlib.ExitStack() as drawn_aside, \
            tqdm(desc="making examples", unit=" examples", disable=None, leave=False, dynamic_ncols=True,
                 mininterval=0.5) as shown:  # on a terminal only (disable=None): logs stay clean
        if memory.facts and rules.facts_per_prompt > 0:  # loading it takes seconds: say so, not a still bar
            shown.set_postfix_str("loading the model that ranks facts by meaning")
            memory.warm()
        chats = sorted(by_chat)
        for number, chat in enumerate(chats, 1):
            shown.set_postfix_str(f"chat {number}/{len(chats)}", refresh=False)
            kept = by_chat.pop(chat) if counting.forked else by_chat[chat]
            pairs = pairs_from_chat(chat, kept, rules, stats)
            while batch := list(itertools.islice(pairs, PROMPT_BATCH)):
                memory.prepare((pair.incoming for pair in batch), rules.facts_per_prompt)  # one embedding call
                for pair in batch:
                    if not spool.add(example_from_pair(pair, persona, memory, rules, contact=chat)):
                        duplicates.add(pair.reply)
                shown.update(len(batch))
        shown.close()
        replies, timing, early_charts = counting.result()
        replies.subtract(duplicates)
        if rules.dedupe:
            stats["dropped_duplicate"] = spool.duplicates
        if not spool.count:
            raise (ChatExportError if seen is None else NothingNew)("no reply pairs found: no message of yours answers a contact within "
                                  f"{rules.reply_window_minutes:g} minutes after the rules were applied "
                                  "(check --me, --since and --group-chats)")
        if make_charts:  # the charts of the replies are drawn aside while the splits are written
            drawing = drawn_aside.enter_context(ForkedCall(write_charts, reply_figures(replies), staging, REPLY_CHARTS,
                                                           parallel=aside, task="drawing the charts"))
        extra_train = examples_from_facts(facts, persona, rules, memory) if facts else []
        if seen is None:  # an update's old train split holds them already (and replays them)
            declining = decline_examples(memory, persona, rules, facts.declines if facts else ())
            reading = reading_examples(memory, persona, rules)
            stats["decline_examples"], stats["reading_examples"] = len(declining), len(reading)
            extra_train.extend(declining + reading)
        if feedback_path is not None:
            rated = good_replies(feedback_path, rules, persona, memory=memory)
            stats["feedback_examples"] = len(rated)
            extra_train.extend(rated)
        counts, tokens = spool.write_splits({name: staging / workspace.split_path(name).name for name in SPLITS},
                                            rules.split, rules.seed, extra_train)
        report = build_report(persona=persona, inputs=[path_text(p) for p in inputs], rules=rules.to_dict(),
                              stats=dict(stats), tally=tally, examples=counts, tokens=tokens,
                              token_unit="tokens" if tokenizer else "words", replies=replies, skipped=skipped)
        report["notes"] = notes[:MAX_NOTES]
        report["contact_voices"] = dict(memory.voices)
        report["timing"] = timing.report()
        # printable(): no lone surrogate (a name's undecodable byte) can make the encoding fail
        write_atomic(staging / "report.json",
                     printable(json.dumps(report, indent=2, ensure_ascii=False)).encode("utf-8"))
        charts = early_charts + (drawing.result() if make_charts else [])
        charts.sort(key=lambda path: CHARTS.index(path.name))
        write_atomic(staging / MEMORY_FILE, memory.to_json().encode("utf-8"))
        if facts is not None and (facts.checks or facts.unknown):
            write_atomic(staging / CHECKS_FILE, facts.checks_json().encode("utf-8"))
        recorder.index(seen).save(staging / SEEN_FILE)
        settings = workspace.settings()
        settings.persona = Persona(name=persona, facts=Path(facts_path).name if facts_path else None)
        settings.data = rules
        settings.timing = timing.settings()
        staged_settings = staging / ".twin.toml"  # a dot: not one of the data files moved below
        settings.save(staged_settings)
        _move_into(staging, workspace.data_dir)
        os.replace(staged_settings, workspace.settings_path)
    charts = [workspace.data_dir / chart.name for chart in charts]
    return ProcessResult(counts=counts, stats=dict(stats), skipped=skipped, persona=persona,
                         report=report, charts=charts, notes=notes)


MAX_NOTES = 200  # reader notes kept in report.json


@contextlib.contextmanager
def _staging(workspace: Workspace):
    """A hidden folder in ``WORKSPACE/data`` to write the run's files into; removed at the end,
    with the data folder and the workspace themselves when this run made them and failed."""
    made = [folder for folder in (workspace.root, workspace.data_dir) if not folder.exists()]
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".process-", dir=workspace.data_dir))
    done = False
    try:
        yield staging
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty: nothing but what this run made


def _move_into(staging: Path, data_dir: Path) -> None:
    """Every file of the staging folder into ``data_dir`` (renames on one file system)."""
    for path in sorted(staging.iterdir()):
        if not path.name.startswith("."):
            os.replace(path, data_dir / path.name)

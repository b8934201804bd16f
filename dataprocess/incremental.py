"""``twin update``'s data side: the examples of new messages only, merged into the workspace.

:func:`stage_update` reads new exports with the workspace's own rules and persona (twin.toml),
through the very pipeline of ``twin process`` (:func:`~dataprocess.pipeline.run_process`, into
a hidden staging folder in WORKSPACE/data), dropping every message already processed
(dataprocess.seen: by content and time). Its new conversations are named apart from the old
ones (``alex#3@u2``: update 2), so a split never shares a conversation with another. It stages
beside them:

* the merged splits (old + new), the report (the old one with an ``updates`` entry saying what
  was new) and the index of processed messages (old + new);
* ``update-train.jsonl``: what the update trains on, the new train examples plus a seeded replay
  sample of the old ones (``replay_ratio`` old per new), so the twin does not forget.

Nothing in WORKSPACE/data changes until :meth:`StagedUpdate.commit` moves the staged files in
(renames; the index last); :meth:`StagedUpdate.discard` (or an interruption) leaves the workspace
as it was.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from core.artifacts import REPORT_FILE, SPLITS, split_file
from core.atomic import write_atomic
from core.workspace import Workspace

from .errors import printable
from .pipeline import run_process
from .readers.base import path_text
from .seen import SEEN_FILE, NothingNew, SeenIndex

UPDATE_TRAIN = "update-train.jsonl"
MAX_UPDATES_KEPT = 50  # update entries kept in report.json


@dataclass
class StagedUpdate:
    workspace: Workspace
    staging: Path
    new_messages: int
    duplicate_messages: int
    new_examples: dict[str, int]
    replay_examples: int
    train_file: Path
    entry: dict = field(default_factory=dict)  # the report's record of this update

    @property
    def valid_file(self) -> Path:
        """The merged valid split (old + new), staged."""
        return self.staging / split_file("valid")

    @property
    def trainable(self) -> bool:
        return self.new_examples.get("train", 0) > 0

    def commit(self) -> None:
        """Move the merged splits, the report, then the index into WORKSPACE/data."""
        data = self.workspace.data_dir
        for name in [split_file(s) for s in SPLITS] + [REPORT_FILE, SEEN_FILE]:
            staged = self.staging / name
            if staged.is_file():
                os.replace(staged, data / name)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def stage_update(inputs: list[Path], workspace: Workspace, *, fmt: str | None = None, me: str | None = None,
                 dayfirst: bool | None = None, replay_ratio: float = 1.0, seed: int = 0) -> StagedUpdate:
    """Stage the update's data (see the module docstring); raises :class:`NothingNew` when the
    exports hold no new message or no new reply pair (nothing is changed then)."""
    workspace.require_data("train")
    settings = workspace.settings()
    seen = SeenIndex.load(workspace.data_dir / SEEN_FILE)
    old_report = _read_json(workspace.data_dir / REPORT_FILE)
    number = len(old_report.get("updates", [])) + 1
    staging = Path(tempfile.mkdtemp(prefix=".update-", dir=workspace.data_dir))
    try:
        inner = Workspace(staging / "new")
        inner.root.mkdir()
        shutil.copy2(workspace.settings_path, inner.settings_path)  # the same rules and persona
        inner.data_dir.mkdir()
        for path in workspace.data_dir.iterdir():  # what process keeps beside the splits (its memory)
            if path.is_file() and path.suffix == ".json" and path.name != REPORT_FILE:
                shutil.copy2(path, inner.data_dir / path.name)
        result = run_process(list(inputs), inner, fmt=fmt, me=me, dayfirst=dayfirst, rules=settings.data,
                             make_charts=False, seen=seen, persona=settings.persona.name)
        suffix = f"@u{number}"
        counts = {}
        for split in SPLITS:
            new_lines = _renamed(inner.split_path(split), suffix)
            counts[split] = len(new_lines)
            _concatenate(workspace.split_path(split), new_lines, staging / split_file(split))
        replay = _write_update_train(workspace.split_path("train"), _renamed(inner.split_path("train"), suffix),
                                     staging / UPDATE_TRAIN, replay_ratio, seed + number)
        os.replace(inner.data_dir / SEEN_FILE, staging / SEEN_FILE)
        stats = result.stats
        entry = {"update": number, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "inputs": [path_text(p) for p in inputs], "new_messages": stats.get("new_messages", 0),
                 "duplicate_messages": stats.get("duplicate_messages", 0),
                 "kept_messages": stats.get("kept_messages", 0), "new_examples": counts,
                 "replay_examples": replay, "replay_ratio": replay_ratio,
                 "examples_after": {s: _count_lines(staging / split_file(s)) for s in SPLITS}}
        report = dict(old_report)
        report["updates"] = (list(old_report.get("updates", [])) + [entry])[-MAX_UPDATES_KEPT:]
        report["examples"] = entry["examples_after"]
        write_atomic(staging / REPORT_FILE, printable(json.dumps(report, indent=2, ensure_ascii=False)))
        shutil.rmtree(inner.root, ignore_errors=True)
        return StagedUpdate(workspace, staging, entry["new_messages"], entry["duplicate_messages"], counts, replay,
                            staging / UPDATE_TRAIN, entry)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _renamed(path: Path, suffix: str) -> list[str]:
    """The split file's lines with each conversation named apart (``+ suffix``)."""
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                record["conversation"] = f"{record.get('conversation', '')}{suffix}"
                out.append(json.dumps(record, ensure_ascii=False) + "\n")
    return out


def _concatenate(old: Path, new_lines: list[str], target: Path) -> None:
    with open(target, "w", encoding="utf-8") as out:
        if old.is_file():
            with open(old, encoding="utf-8") as handle:
                shutil.copyfileobj(handle, out)
        out.writelines(new_lines)


def _write_update_train(old_train: Path, new_lines: list[str], target: Path, ratio: float, seed: int) -> int:
    """New train lines plus ``ratio`` old ones per new one (a seeded sample, at most all of them),
    shuffled together; returns how many old ones were replayed."""
    old_lines = [line for line in open(old_train, encoding="utf-8") if line.strip()] if old_train.is_file() else []
    rng = random.Random(seed)
    replay = rng.sample(old_lines, min(len(old_lines), round(len(new_lines) * max(ratio, 0.0))))
    lines = [line if line.endswith("\n") else line + "\n" for line in new_lines + replay]
    rng.shuffle(lines)
    target.write_text("".join(lines), encoding="utf-8")
    return len(replay)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


__all__ = ["NothingNew", "StagedUpdate", "UPDATE_TRAIN", "stage_update"]

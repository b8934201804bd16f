"""Examples on their way to the split files, with memory bounded at any history size.

A history of years makes hundreds of thousands of examples, and which split an example goes
to is known only once every conversation id has been seen. Rather than holding the examples
as dicts until then, :class:`ExampleSpool` writes each one as its JSON line to a temporary
file as it is made (dropping duplicates by a 16-byte hash of its prompt and
reply), and remembers only the conversation ids. :meth:`ExampleSpool.write_splits` then
copies each line to its split's file (all three atomic: they appear together or not at all)
and feeds it to a :class:`~dataprocess.report.SplitSummary` for the data report.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

from core.artifacts import SPLITS
from core.atomic import atomic_file

from .examples import assign_splits
from .report import SplitSummary


class ExampleSpool:
    """Chat examples spooled to disk as made; extra train examples (facts, feedback) kept aside."""

    def __init__(self, dedupe: bool = True) -> None:
        # In the system's temp directory (private to the user, mode 0600), so a run that fails
        # leaves nothing in the workspace; deleted on close.
        fd, name = tempfile.mkstemp(prefix="twin-examples-", suffix=".spool")
        self.path = Path(name)
        self._handle = os.fdopen(fd, "w", encoding="utf-8")
        self._dedupe = dedupe
        self._seen: set[bytes] = set()
        self._conversations: dict[str, int] = {}
        self.count = 0
        self.duplicates = 0

    def add(self, example: dict) -> None:
        prompt = json.dumps(example["prompt"], ensure_ascii=False)
        completion = json.dumps(example["completion"], ensure_ascii=False)
        if self._dedupe:
            key = hashlib.blake2b(f"{prompt}\0{completion}".encode(), digest_size=16).digest()
            if key in self._seen:
                self.duplicates += 1
                return
            self._seen.add(key)
        conversation = example["conversation"]
        index = self._conversations.setdefault(conversation, len(self._conversations))
        line = (f'{{"prompt": {prompt}, "completion": {completion}, '
                f'"conversation": {json.dumps(conversation, ensure_ascii=False)}, '
                f'"source": {json.dumps(example["source"])}}}')
        self._handle.write(f"{index}\t{line}\n")
        self.count += 1

    def write_splits(self, paths: dict[str, Path], fractions: tuple[float, float, float], seed: int,
                     extra_train: Iterable[dict], summary: SplitSummary) -> dict[str, int]:
        """Write every split file (chat examples by conversation, then ``extra_train`` into
        train); returns the count per split."""
        self._handle.close()
        assign = assign_splits(self._conversations, fractions, seed)
        split_of = [assign.get(cid, "train") for cid in self._conversations]
        self._conversations.clear()
        self._seen.clear()
        counts = dict.fromkeys(SPLITS, 0)
        with contextlib.ExitStack() as stack:
            handles = {}
            for split in SPLITS:
                tmp = stack.enter_context(atomic_file(paths[split]))
                handles[split] = stack.enter_context(open(tmp, "w", encoding="utf-8"))
            with open(self.path, encoding="utf-8") as spool:
                for raw in spool:
                    index, line = raw.split("\t", 1)
                    split = split_of[int(index)]
                    handles[split].write(line)
                    summary.add(split, json.loads(line))
                    counts[split] += 1
            for example in extra_train:
                handles["train"].write(json.dumps(example, ensure_ascii=False) + "\n")
                summary.add("train", example)
                counts["train"] += 1
            for handle in handles.values():
                handle.close()        # flushed before atomic_file renames it into place
        return counts

    def close(self) -> None:
        self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> "ExampleSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

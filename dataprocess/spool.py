"""Examples on their way to the split files, with memory bounded at any history size.

A history of years makes hundreds of thousands of examples, and which split an example goes
to is known only once every conversation id has been seen. Rather than holding the examples
as dicts until then, :class:`ExampleSpool` writes each one as its JSON line to a temporary
file as it is made (dropping duplicates by a 16-byte hash of its prompt and reply), and
remembers only the conversation ids. Lines are encoded with orjson (the standard library's
encoder took a third of ``twin process``'s time on a long history). Each line carries its conversation's index and its size
(tokens, or words without a tokenizer), so :meth:`ExampleSpool.write_splits` only copies
lines to their split's file (all three atomic: they appear together or not at all) and adds
up the sizes for the data report, without parsing them again.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import orjson

from core.artifacts import SPLITS
from core.atomic import atomic_file

from .examples import assign_splits

_BATCH = 1024  # examples sized at once (a tokenizer is fastest on batches); bounded memory


def example_texts(example: dict) -> list[str]:
    return [m["content"] for m in example["prompt"]] + [m["content"] for m in example["completion"]]


def _sizes_by_text(examples: list[dict], count: Callable[[list[str]], list[int]]) -> list[int]:
    """Each example's size, with ``count`` (texts -> sizes) run once per distinct text: a turn
    is context for several examples in a row, and every example has the same system line."""
    index: dict[str, int] = {}
    owners = [[index.setdefault(text, len(index)) for text in example_texts(ex)] for ex in examples]
    sizes = count(list(index)) if index else []
    return [sum(sizes[i] for i in owned) for owned in owners]


def word_sizes(examples: list[dict]) -> list[int]:
    """The size of each example in words (used when no tokenizer is at hand). Each distinct text
    of the batch is split once: a turn is context for several examples in a row and the system
    line is the same for a chat's examples (30% quicker than one split of each example's texts
    joined, on a generated history of 30,000 examples)."""
    counted: dict[str, int] = {}
    get = counted.get
    sizes = []
    for example in examples:
        total = 0
        for part in (example["prompt"], example["completion"]):
            for message in part:
                text = message["content"]
                words = get(text)
                if words is None:
                    words = counted[text] = len(text.split())
                total += words
        sizes.append(total)
    return sizes


def token_sizes(tokenizer) -> Callable[[list[dict]], list[int]]:
    """The size of each example in tokens of ``tokenizer`` (a ``tokenizers.Tokenizer``)."""
    def token_counts(texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]

    return lambda examples: _sizes_by_text(examples, token_counts)


def _content(line: bytes, example: dict) -> bytes:
    """What makes two examples duplicates: their prompt and completion, whatever their
    conversation. Taken from the example's JSON line when prompt and completion come before the
    conversation in it (``examples.example_from_pair`` builds them so): one encoding per example
    instead of three. Quotes inside strings are escaped in JSON, so ``,"completion":`` and
    ``,"conversation":`` are found only where they are keys."""
    completion, conversation = line.rfind(b',"completion":'), line.rfind(b',"conversation":')
    if line.startswith(b'{"prompt":') and 0 < completion < conversation:
        return line[:conversation]
    # the same bytes, encoded field by field (orjson writes no spaces)
    return b'{"prompt":' + orjson.dumps(example["prompt"]) + b',"completion":' + orjson.dumps(example["completion"])


class ExampleSpool:
    """Chat examples spooled to disk as made, then written to their split files."""

    def __init__(self, dedupe: bool = True, sizes: Callable[[list[dict]], list[int]] = word_sizes) -> None:
        # In the system's temp directory (private to the user, mode 0600), so a run that fails
        # leaves nothing in the workspace; deleted on close.
        fd, name = tempfile.mkstemp(prefix="twin-examples-", suffix=".spool")
        self.path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        self._dedupe = dedupe
        self._sizes = sizes
        self._seen: set[bytes] = set()
        self._conversations: dict[str, int] = {}
        self._pending: list[tuple[int, bytes, dict]] = []
        self.count = 0
        self.duplicates = 0

    def add(self, example: dict) -> bool:
        """Spool one chat example; False when it duplicates one already spooled."""
        line = orjson.dumps(example)
        if self._dedupe:
            key = hashlib.blake2b(_content(line, example), digest_size=16).digest()
            if key in self._seen:
                self.duplicates += 1
                return False
            self._seen.add(key)
        index = self._conversations.setdefault(example["conversation"], len(self._conversations))
        self._pending.append((index, line, example))
        if len(self._pending) >= _BATCH:
            self._flush()
        self.count += 1
        return True

    def _flush(self) -> None:
        sizes = self._sizes([example for _, _, example in self._pending])
        self._handle.write(b"".join(b"%d\t%d\t%b\n" % (index, size, line)
                                    for (index, line, _), size in zip(self._pending, sizes)))
        self._pending.clear()

    def write_splits(self, paths: dict[str, Path], fractions: tuple[float, float, float], seed: int,
                     extra_train: Iterable[dict] = ()) -> tuple[dict[str, int], dict[str, int]]:
        """Write every split file (chat examples by conversation, then ``extra_train`` into
        train); returns the examples and the tokens (or words) per split."""
        self._flush()
        self._handle.close()
        assign = assign_splits(self._conversations, fractions, seed)
        split_of = [assign.get(cid, "train") for cid in self._conversations]
        self._conversations.clear()
        self._seen.clear()
        counts, sizes = dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0)
        with contextlib.ExitStack() as stack:
            handles = {}
            for split in SPLITS:
                tmp = stack.enter_context(atomic_file(paths[split]))
                handles[split] = stack.enter_context(open(tmp, "wb"))
            with open(self.path, "rb") as spool:
                for raw in spool:
                    index, size, line = raw.split(b"\t", 2)
                    split = split_of[int(index)]
                    handles[split].write(line)
                    counts[split] += 1
                    sizes[split] += int(size)
            extra = list(extra_train)
            for example, size in zip(extra, self._sizes(extra) if extra else []):
                handles["train"].write(orjson.dumps(example) + b"\n")
                counts["train"] += 1
                sizes["train"] += size
            for handle in handles.values():
                handle.close()        # flushed before atomic_file renames it into place
        return counts, sizes

    def close(self) -> None:
        self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> "ExampleSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

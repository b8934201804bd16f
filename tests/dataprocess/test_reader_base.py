"""The reader base: its parts are abstract (a reader missing one fails when it is built), and
names that are not UTF-8 are shown escaped wherever the base writes them."""
from __future__ import annotations

import os

import pytest

from dataprocess.readers import READERS
from dataprocess.readers.base import Reader, note_skip, path_text


class _Complete(Reader):
    name = "complete"

    def sniff(self, path, head):
        return False

    def chats(self, path):
        return iter(())

    def records(self, path, chat):
        return iter(())

    def message(self, record, chat, mine):
        return None


@pytest.mark.parametrize("missing", ["sniff", "chats", "records", "message"])
def test_a_reader_missing_a_part_fails_when_built(missing):
    parts = {name: getattr(_Complete, name) for name in ("sniff", "chats", "records", "message")}
    del parts[missing]
    incomplete = type("Incomplete", (Reader,), {"name": "incomplete", **parts})
    with pytest.raises(TypeError, match=f"abstract method.*{missing}"):
        incomplete()
    _Complete()  # with all four it builds


def test_every_registered_reader_is_complete():
    for reader in READERS.values():
        assert not getattr(type(reader), "__abstractmethods__", None), reader


def test_a_name_that_is_not_utf8_is_shown_escaped():
    name = os.fsdecode(b"/exports/chat\xff\xfe.txt")
    assert path_text(name) == "/exports/chat\\xff\\xfe.txt"
    path_text(name).encode("utf-8")  # always encodable
    skipped = []
    note_skip(skipped, name, 3, "bad \ud800 record")
    assert skipped == [("/exports/chat\\xff\\xfe.txt", 3, "bad \ufffd record")]

"""Reading the exports in a forked second process while this one works on what was read.

On a long history ``twin process`` spends about as long on each message after reading it
(fingerprinting, tallying, the rules, cleaning) as the reader spends parsing it, all on one
core. :func:`read_ahead` moves the parsing to a forked child: the child runs the readers and
sends their messages back in batches of plain tuples through a pipe (pickled: a plain tuple
pickles in half the time of the named tuple, and is made a :class:`~dataprocess.message.Message`
again here); this process takes each batch as it comes. The child is never more than about one
batch ahead (a pipe holds less than one), so memory stays bounded at any history size.

What the readers report besides their messages (the records they skipped, their notes) is
appended to lists as they read; the child's lists come back with its last message and are
appended to the caller's. An error a reader raises (a refused file, an unreadable export) is
raised here, after the messages read before it, as itself: the same type and the same one
line. A child that dies gives :class:`~dataprocess.errors.BackgroundWorkError`.

Short inputs, a machine with one core, or one without fork read in place: the same readers,
the same messages in the same order.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .errors import BackgroundWorkError
from .forked import can_fork, usable_cores
from .message import Message

BATCH = 2048                  # messages a child sends at a time
READ_AHEAD_BYTES = 8 << 20    # inputs from which reading in a second process is worth it (~120,000 messages)


def input_bytes(paths: Iterable[Path]) -> int:
    """The bytes of the input files (a folder's: every file in it); special files count 0."""
    total = 0
    for path in paths:
        path = Path(path)
        try:
            if path.is_dir():
                total += sum(os.path.getsize(os.path.join(root, name))
                             for root, _, names in os.walk(path) for name in names
                             if os.path.isfile(os.path.join(root, name)))
            elif path.is_file():
                total += path.stat().st_size
        except OSError:  # unreadable: the reader says so, with its own message
            continue
    return total


def _child(connection, stream: Callable[[], Iterable[Message]], outputs: Sequence[list]) -> None:
    starts = [len(output) for output in outputs]  # what the lists held before: the caller has it
    batch: list[tuple] = []
    try:
        for message in stream():
            batch.append(tuple(message))
            if len(batch) >= BATCH:
                connection.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
                batch = []
        end = ("done", [output[start:] for output, start in zip(outputs, starts)], None)
    except KeyboardInterrupt:  # Ctrl-C reaches both processes: the parent says what happened
        os._exit(130)
    except BaseException as exc:  # raised again in the parent, after the messages before it
        end = ("error", exc, f"{type(exc).__name__}: {exc}")
    if batch:
        connection.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    try:
        data = pickle.dumps(end, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its one line still travels
        data = pickle.dumps(("error", None, end[2]), protocol=pickle.HIGHEST_PROTOCOL)
    connection.send_bytes(data)
    connection.close()


def _died() -> BackgroundWorkError:
    return BackgroundWorkError("the process reading the exports ended unexpectedly; nothing was written "
                               "(run the same command again)")


def read_ahead(stream: Callable[[], Iterable[Message]], outputs: Sequence[list] = (), *,
               parallel: bool = True) -> Iterator[Message]:
    """The messages of ``stream()``, read in a forked child when ``parallel`` (and the machine
    allows it), else here. ``outputs`` are the lists ``stream()`` appends to as it reads; the
    child's entries are appended to them once its last message is in."""
    if not (parallel and can_fork() and usable_cores() > 1):
        yield from stream()
        return
    context = multiprocessing.get_context("fork")
    connection, theirs = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(theirs, stream, outputs), daemon=True)
    process.start()
    theirs.close()
    make = Message._make
    finished = False
    try:
        while True:
            try:
                item = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                raise _died() from None
            if isinstance(item, list):
                yield from map(make, item)
                continue
            status, value, line = item
            if status == "done":
                for output, entries in zip(outputs, value):
                    output.extend(entries)
                finished = True
                return
            if isinstance(value, BaseException):
                raise value
            raise BackgroundWorkError(f"the process reading the exports failed ({line}); nothing was written")
    finally:  # the last message is in, the caller stopped early, or an error: the child goes
        connection.close()
        if finished:
            process.join(timeout=10)  # it has sent its last word: it is on its way out
        if process.is_alive():
            process.terminate()
        process.join()

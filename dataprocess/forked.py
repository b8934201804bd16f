"""One call run in a forked second process while this one goes on with other work.

``twin process`` on a long history is CPU-bound in one process; the machine usually has a second
core. :class:`ForkedCall` runs a function there on data already in memory: a forked child
inherits it as it is (nothing is serialised on the way in), and only the result comes back,
pickled, through a pipe. Where fork is not available, with one usable core, or when the caller
says the work is too small to be worth a process, the function runs in place when its result
is asked for: the same function, the same result.

A child that dies, or whose function fails, gives :class:`~dataprocess.errors.BackgroundWorkError`
(one line through the CLI, exit status 1), never a bare RuntimeError and its traceback.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Callable, Generic, TypeVar

from .errors import BackgroundWorkError

Result = TypeVar("Result")


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _child(connection, function, args) -> None:
    try:
        outcome = ("ok", function(*args))
    except BaseException as exc:  # reported to the parent, which raises it there
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    connection.send(outcome)
    connection.close()


class ForkedCall(Generic[Result]):
    """``function(*args)`` started in a forked child at once; :meth:`result` waits for it.
    ``task`` says what the child does, in its errors ("counting the reply figures").

    Use as a context manager: leaving it (an error, Ctrl-C) ends a child still at work. The
    child must not need anything this process changes after the fork: it sees memory as it was.
    """

    def __init__(self, function: Callable[..., Result], *args, parallel: bool = True,
                 task: str = "doing its share of the work") -> None:
        self._function, self._args, self._task = function, args, task
        self._process = self._connection = None
        if parallel and can_fork() and usable_cores() > 1:
            context = multiprocessing.get_context("fork")
            self._connection, theirs = context.Pipe(duplex=False)
            self._process = context.Process(target=_child, args=(theirs, function, args), daemon=True)
            self._process.start()
            theirs.close()

    @property
    def forked(self) -> bool:
        return self._process is not None

    def result(self) -> Result:
        if self._process is None:
            return self._function(*self._args)
        try:
            status, value = self._connection.recv()
            self._process.join(timeout=10)  # it has sent its result: it is on its way out
        except (EOFError, OSError):
            raise BackgroundWorkError(f"the background process {self._task} ended unexpectedly; "
                                      "nothing was written (run the same command again)") from None
        finally:
            self.close()
        if status != "ok":
            raise BackgroundWorkError(f"the background process {self._task} failed ({value}); "
                                      "nothing was written")
        return value

    def close(self) -> None:
        if self._process is None:
            return
        self._connection.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._process = self._connection = None

    def __enter__(self) -> "ForkedCall[Result]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

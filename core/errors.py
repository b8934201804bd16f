"""One error base for every stage, with the exit code each kind of failure gets.

A command that fails prints one readable line and exits with :attr:`TwinError.exit_code`:

- ``2``: the user can fix it: bad input, a wrong flag, a missing or empty workspace, a model
  that is not there (:class:`InputError`). click's own usage errors use 2 as well.
- ``1``: something went wrong inside twin or a library it drives (:class:`TwinError`).

Every stage raises these (or subclasses with a stage's name); :func:`cli_errors` turns them
into click's one-line errors, so no command prints a traceback for an expected failure.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class TwinError(Exception):
    """A failure reported as one line; exit status 1 unless a subclass says otherwise."""

    exit_code = EXIT_INTERNAL


class InputError(TwinError, ValueError):
    """Input the user can fix: a malformed export, a wrong option, a missing workspace file."""

    exit_code = EXIT_BAD_INPUT


def _click_exception(message: str, exit_code: int):
    import click

    exc = click.ClickException(message)
    exc.exit_code = exit_code
    return exc


@contextlib.contextmanager
def cli_errors(interrupted: str = "interrupted") -> Iterator[None]:
    """Run a command's body; turn twin's errors and Ctrl-C into one line and an exit code."""
    try:
        yield
    except TwinError as exc:
        raise _click_exception(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise _click_exception(interrupted, EXIT_INTERRUPTED) from None

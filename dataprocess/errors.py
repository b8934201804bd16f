"""The error the data stage raises for input it cannot use (shown to the user as one line)."""
from core.errors import InputError


class ChatExportError(InputError):
    """A chat export that cannot be read: unknown format, unreadable, malformed or hostile.

    An :class:`~core.errors.InputError`: the command shows one line and exits with status 2.
    """

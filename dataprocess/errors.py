"""Errors the data stage raises for input it cannot use (shown to the user as one line)."""


class ExportError(ValueError):
    """An export file that cannot be read: unknown format, unreadable, or malformed."""

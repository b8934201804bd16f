"""Messages as select_messages keeps them, for tests that pair a hand-made chat directly."""


def kept(messages):
    """(timestamp, from_me, text) of each message, as ``dataprocess.conversations.Kept``."""
    return [(m.timestamp, m.from_me, m.text) for m in messages]

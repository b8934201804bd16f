"""The `Message` record every export reader yields, whatever the platform."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

#: Message kinds a reader may produce. Only ``text`` messages become training data.
KINDS = ("text", "media", "system", "reaction")


# A named tuple: immutable, as small as a slotted class, and made 3-4x faster than a frozen
# dataclass (whose __init__ sets each field through object.__setattr__): readers make one per
# message, a million for a long history.
class Message(NamedTuple):
    """One message of a chat export, normalised across platforms.

    ``chat`` names the conversation (the contact for a one-on-one chat, the group's name
    otherwise); ``from_me`` says whether the export's owner sent it; ``kind`` is one of
    :data:`KINDS`; ``source`` names the export it came from (a file, or a Messenger thread
    folder), so same-named chats of different exports stay apart.
    """

    sender: str
    text: str
    timestamp: datetime
    chat: str
    from_me: bool
    kind: str = "text"
    is_group: bool = False
    source: str = ""

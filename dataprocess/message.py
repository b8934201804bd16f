"""The `Message` record every export reader yields, whatever the platform."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Message kinds a reader may produce. Only ``text`` messages become training data.
KINDS = ("text", "media", "system", "reaction")


@dataclass(frozen=True, slots=True)  # slots: a million messages in a third of the memory
class Message:
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

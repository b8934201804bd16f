"""The data rules in one place: their defaults (from the reference pipeline) and switches."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime


@dataclass
class Rules:
    """Every choice ``twin process`` makes about which messages become training examples."""

    since: datetime = field(default_factory=lambda: datetime(2023, 1, 1))
    group_chats: bool = False          # one-on-one chats only unless asked
    top_contacts: int = 20             # keep the N most-messaged contacts (0 = all)
    lowercase: bool = True
    replace_urls: bool = True          # URL -> "link"
    strip_emoji: bool = True
    squash_repeats: bool = True        # oooooh -> oooh
    scrub_personal_data: bool = True   # emails, phones, cards, IBANs, accounts, addresses -> placeholders
    anonymize_contacts: bool = False   # contacts' names in their messages -> <contact>
    max_message_chars: int = 1000      # longer messages (pasted text, logs) are dropped (0 = no cap)
    reply_window_minutes: float = 30.0  # a reply counts only within this time
    session_gap_hours: float = 6.0     # a longer silence starts a new conversation
    context_turns: int = 4             # earlier turns of the conversation shown to the model
    context_chars: int = 600           # ...capped at this many characters
    max_reply_chars: int = 400         # longer replies are dropped
    facts_repeat: int = 3              # each fact question/answer repeated this often
    dedupe: bool = True
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["since"] = self.since.date().isoformat()
        data["split"] = list(self.split)
        return data

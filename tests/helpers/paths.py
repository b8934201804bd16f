"""Paths the tests share: the repository root and the bundled sample."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CSV = ROOT / "samples" / "imessage" / "messages.csv"
SAMPLE_FACTS = ROOT / "samples" / "facts.toml"

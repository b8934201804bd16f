"""The data rules: defined with the workspace settings (``core.settings.Rules``), which
twin.toml stores and `twin serve` reads back to clean live requests the same way."""
from core.settings import Rules

__all__ = ["Rules"]

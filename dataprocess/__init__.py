"""Data stage: chat exports -> Message stream -> cleaned conversations -> training examples.

``from dataprocess import read_export`` yields :class:`Message` records from any supported
export; ``twin process`` (``dataprocess.cli``) turns exports into ``WORKSPACE/data/*.jsonl``.
"""
from .errors import ChatExportError
from .message import Message
from .readers import FORMATS, detect_format, read_export

__all__ = ["ChatExportError", "FORMATS", "Message", "detect_format", "read_export"]

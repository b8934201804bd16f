"""Fixtures of the bot tests: a workspace around the tiny GGUF with a known [timing], the Bot API
stand-in, and POST /generate on the same model (the reference a bot reply must equal)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers.server import running

from core.settings import Persona, Rules, Sampling, Settings

sys.path.insert(0, str(Path(__file__).parent))

from botkit import CONTACT, HELLO, TIMING, TOKEN, _post
from standin import StandIn


@pytest.fixture(scope="session")
def bot_workspace(tiny_gguf, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bot-ws")
    (root / "model").mkdir()
    shutil.copy(tiny_gguf, root / "model" / "twin-F16.gguf")
    Settings(persona=Persona("maya"), timing=TIMING).save(root / "twin.toml")
    return root


@pytest.fixture
def api():
    with StandIn(TOKEN) as standin:
        yield standin


@pytest.fixture(scope="session")
def served(tiny_gguf):
    """POST /generate on the same GGUF and settings (the bot's workspace keeps the defaults), and
    a seed whose reply to HELLO has several messages."""
    from server.app import create_app
    from voice.llama import BatchedLlamaBackend

    backend = BatchedLlamaBackend(tiny_gguf, parallel=1, threads=1)
    app = create_app(backend, persona="maya", rules=Rules(), sampling=Sampling())
    try:
        with running(app) as url:
            def generate(text, seed, history=None, contact=CONTACT):
                # the contact as the bots name the sender: both stand-ins' user is "Alex"
                return _post(f"{url}/generate", {"text": text, "seed": seed, "history": history or [],
                                                 "contact": contact})

            seed = next(s for s in range(40, 240) if len(generate(HELLO, s)["messages"]) >= 2)
            yield generate, seed
    finally:
        backend.close()

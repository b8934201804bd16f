"""The ``twin chat`` command: talk to the twin in the terminal, with the model loaded locally (no HTTP).

The conversation is kept (its last ``--turns`` messages) and sent along with each new text,
as the server does; each message of a reply (the parts between `` | ``) is printed on its own
line. ``/reset`` starts over, ``/quit`` (or Ctrl-D, Ctrl-C) leaves.
"""
from __future__ import annotations

import sys
from collections import deque

import click

from .backends import PromptTooLong
from .cli import load, model_options
from .queueing import Overloaded
from .replies import complete
from .schema import MAX_TEXT_CHARS

HELP = "type a message; /reset starts over, /quit (or Ctrl-D) leaves"


@click.command("chat")
@model_options
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1, 1024), default=64, show_default=True)
@click.option("--turns", type=click.IntRange(0, 200), default=16, show_default=True,
              help="Earlier messages of the conversation kept as context.")
def chat_command(workspace, model_path, backend, persona, gpu_layers, threads, context, temperature,
                 max_tokens, turns):
    """Chat with the twin in the terminal (the model runs here, no server needed)."""
    from .app import TwinState

    loaded, persona, settings = load(workspace, model_path, backend, persona, gpu_layers, threads, context,
                                     timeout=None)
    twin = TwinState(loaded, persona, settings.get("data", {}).get("lowercase", True))
    history: deque[tuple[str, str]] = deque(maxlen=turns)
    click.echo(f"chatting with {persona} ({loaded.name}): {HELP}")
    prompt = "you> " if sys.stdin.isatty() else ""  # piped input: replies only, one per line
    while True:
        try:
            line = input(prompt)
        except (EOFError, KeyboardInterrupt):
            click.echo()
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/reset":
            history.clear()
            click.echo("(conversation reset)")
            continue
        if text.startswith("/") and " " not in text:
            click.echo(f"unknown command {text}: {HELP}")
            continue
        text = text[:MAX_TEXT_CHARS]
        try:
            reply = complete(loaded, twin.prompt(list(history), text), temperature=temperature,
                             max_tokens=max_tokens)
        except KeyboardInterrupt:
            click.echo()
            break
        except PromptTooLong:
            history.clear()
            click.echo("(the conversation got too long for the model: reset; send that again)")
            continue
        except Overloaded as exc:  # pragma: no cover - no timeout in the terminal
            click.echo(f"({exc})")
            continue
        for part in reply.messages or ["(no reply)"]:
            click.echo(f"{persona}> {part}")
        history.append(("user", twin.clean(text)))
        if reply.text:
            history.append(("assistant", reply.text))
    click.echo("bye")

"""The ``twin chat`` command: talk to the twin in the terminal, with the model loaded locally (no HTTP).

The conversation is kept (its last ``--turns`` messages) and sent along with each new text;
the prompt is built as the server builds it (dataprocess.live_prompt: the training rules),
and decoding defaults come from twin.toml or the GGUF (``--temperature`` / ``--max-tokens``
change them). Each message of a reply (the parts between `` | ``) is printed on its own line;
an empty reply is generated again, as in the server. ``/reset`` starts over, ``/quit`` (or
Ctrl-D, Ctrl-C) leaves.
"""
from __future__ import annotations

import sys
from collections import deque

import click


from core.errors import cli_errors

from voice.backend import PromptTooLong
from .cli import load, model_options
from voice.decoding import Decoding
from voice.queueing import Overloaded
from voice.replies import complete
from .schema import MAX_TEXT_CHARS

HELP = "type a message; /reset starts over, /quit (or Ctrl-D) leaves"


@click.command("chat")
@model_options
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature [default: the twin's].")
@click.option("--max-tokens", type=click.IntRange(1, 1024), help="Longest reply in tokens [default: the twin's].")
@click.option("--turns", type=click.IntRange(0, 200), default=16, show_default=True,
              help="Earlier messages of the conversation kept as context.")
@click.option("--seed", type=click.IntRange(0, 2 ** 31 - 1),
              help="Seed of the first reply, the next one of each reply after it (as `twin eval` seeds "
                   "its replies, and POST /generate's 'seed') [default: a fresh seed each reply].")
@click.option("--as", "contact", metavar="NAME",
              help="Who you are to the twin (a contact's name, or one of --contact-groups' names): "
                   "it answers in the voice it uses with them.")
def chat_command(workspace, model_path, backend, persona, gpu_layers, threads, context, temperature,
                 max_tokens, turns, seed, contact):
    """Chat with the twin in the terminal (the model runs here, no server needed)."""
    with cli_errors():
        served = load(workspace, model_path, backend, persona, gpu_layers, threads, context, timeout=None)
    prompts = served.prompts()
    decoding = Decoding.from_sampling(served.sampling).with_changes(temperature=temperature, max_tokens=max_tokens,
                                                                   seed=seed)
    history: deque[tuple[str, str]] = deque(maxlen=turns)
    click.echo(f"chatting with {served.persona} ({served.backend.name}): {HELP}")
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
            reply = complete(served.backend, prompts.messages(list(history), text, contact), decoding)
            if seed is not None:
                decoding = decoding.with_changes(seed=decoding.seed + 1)
        except KeyboardInterrupt:
            click.echo()
            break
        except PromptTooLong:
            history.clear()
            click.echo("(the conversation got too long for the model: reset; send that again)")
            continue
        except Overloaded as exc:  # the twin said nothing in every try
            click.echo(f"({exc})")
            continue
        for part in reply.messages:
            click.echo(f"{served.persona}> {part}")
        history.append(("user", text))
        history.append(("assistant", reply.text))
    click.echo("bye")

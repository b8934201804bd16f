"""The ``twin`` command: a thin click group that assembles each stage's own command."""
from __future__ import annotations

import importlib
import logging
import os

# llama.cpp's and torch's OpenMP threads spin while waiting by default; on a small or busy
# machine that starves the other threads (measured: Q8_0 generation 1.0 -> 44 tok/s with a
# training run beside it). Must be set before torch or llama_cpp is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

# bitsandbytes warns on import about an optional CPU kernel package that twin does not use.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

# Each command is imported when it is run (click's lazily loaded subcommands): `twin process`
# does not pay for the server's and the bot's imports (Flask, the model backends), ~0.5 s.
COMMANDS = {  # name -> (module, attribute), in pipeline order (how --help lists them)
    "process": ("dataprocess.cli", "process_command"),
    "train": ("trainer.cli", "train_command"),
    "eval": ("trainer.eval_cli", "eval_command"),
    "export": ("export.cli", "export_command"),
    "serve": ("server.cli", "serve_command"),
    "chat": ("server.chat", "chat_command"),
    "update": ("trainer.update", "update_command"),
    "bot": ("bot.cli", "bot_command"),
}


class PipelineGroup(click.Group):
    """Lists the commands in pipeline order rather than alphabetically, and imports each one
    only when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="twin")
def main() -> None:
    """Turn your chat exports into a small language model that texts like you.

    \b
    Pipeline:  process -> train -> export -> serve
    """


if __name__ == "__main__":
    main()

"""The ``twin`` command: a thin click group that assembles each stage's own command."""
from __future__ import annotations

import logging
import os

# llama.cpp's and torch's OpenMP threads spin while waiting by default; on a small or busy
# machine that starves the other threads (measured: Q8_0 generation 1.0 -> 44 tok/s with a
# training run beside it). Must be set before torch or llama_cpp is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

# bitsandbytes warns on import about an optional CPU kernel package that twin does not use.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

from bot.cli import bot_command  # noqa: E402
from dataprocess.cli import process_command  # noqa: E402
from export.cli import export_command  # noqa: E402
from server.chat import chat_command  # noqa: E402
from server.cli import serve_command  # noqa: E402
from trainer.cli import train_command  # noqa: E402
from trainer.eval_cli import eval_command  # noqa: E402
from trainer.update import update_command  # noqa: E402


class PipelineGroup(click.Group):
    """Lists the commands in pipeline order rather than alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="twin")
def main() -> None:
    """Turn your chat exports into a small language model that texts like you.

    \b
    Pipeline:  process -> train -> export -> serve
    """


main.add_command(process_command)
main.add_command(train_command)
main.add_command(eval_command)
main.add_command(export_command)
main.add_command(serve_command)
main.add_command(chat_command)
main.add_command(update_command)
main.add_command(bot_command)

if __name__ == "__main__":
    main()

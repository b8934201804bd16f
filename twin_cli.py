"""The ``twin`` command: a thin click group that assembles each stage's own command."""
from __future__ import annotations

import logging

import click

# bitsandbytes warns on import about an optional CPU kernel package that twin does not use.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

from dataprocess.cli import process_command  # noqa: E402
from server.cli import serve_command  # noqa: E402
from trainer.cli import train_command  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="twin")
def main() -> None:
    """Turn your chat exports into a small language model that texts like you.

    \b
    Pipeline:  process -> train -> export -> serve
    """


main.add_command(process_command)
main.add_command(train_command)
main.add_command(serve_command)

if __name__ == "__main__":
    main()

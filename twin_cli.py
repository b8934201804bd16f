"""The ``twin`` command: a thin click group that assembles each stage's own command."""
from __future__ import annotations

import click

from dataprocess.cli import process_command
from server.cli import serve_command
from trainer.cli import train_command


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

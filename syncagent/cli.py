"""Command line: wires the configuration to the engine, the agent and the emulator.

Exit codes: 0 all in sync, 1 some files failed, 2 usage or configuration error.
"""

from __future__ import annotations

import click

from syncagent import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Sync local folders with Compass folders: ingest, revisions and mirrors."""


def _register_emulator() -> None:
    from syncagent.emulator.cli import emulator_command

    main.add_command(emulator_command, name="emulator")


_register_emulator()

"""Command line: wires the configuration to the engine, the agent and the emulator.

Exit codes: 0 all in sync, 1 some files (or a mapping) failed, 2 usage or configuration
error, including credentials Compass refuses.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import ClassVar

import click

from syncagent import __version__
from syncagent.config import Config, ConfigError, find_config, load_config

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_CONFIG = 2

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: $SYNCAGENT_CONFIG, then ./agent.toml).",
)
verbose_option = click.option(
    "-v", "--verbose", count=True, help="Log every event (DEBUG level)."
)


def _load(
    config_path: Path | None,
    *,
    as_json: bool = False,
    need_password: bool = True,
    logged: bool = False,
) -> Config:
    """The configuration, or exit 2 saying why; with `logged`, the error is a log
    line in the format logging was set up with (a JSON line for a log shipper)."""
    try:
        return load_config(find_config(config_path), need_password=need_password)
    except ConfigError as exc:
        message = f"configuration error: {exc}"
        if logged:
            log.error("%s", message)
        else:
            click.echo(f"syncagent: {message}", err=True)
        if as_json:  # a script reading stdout still gets one JSON document
            click.echo(
                json.dumps({"ok": False, "exit_code": EXIT_CONFIG, "fatal": message})
            )
        sys.exit(EXIT_CONFIG)


class _Commands(click.Group):
    """The command group; the emulator's command is imported only when used, since
    its server stack is heavy and the agent's own commands do not need it."""

    lazy: ClassVar[dict[str, str]] = {
        "emulator": "syncagent.emulator.cli:emulator_command"
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Sync local folders with Compass folders: ingest, revisions and mirrors."""


@main.command()
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Show what would be done; change nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@verbose_option
def sync(config_path: Path | None, dry_run: bool, as_json: bool, verbose: int) -> None:
    """Sync every mapping once, verify, print a summary and exit.

    Exit status: 0 all in sync, 1 some files failed (each listed with its reason),
    2 configuration or usage error, 130 stopped by Ctrl-C or SIGTERM (what was in
    flight resumes at the next run).
    """
    from syncagent.commands.sync import run_sync

    config = _load(config_path, as_json=as_json)
    sys.exit(run_sync(config, dry_run=dry_run, as_json=as_json, verbose=verbose))


@main.command()
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as plain text or as JSON objects.",
)
@verbose_option
def run(config_path: Path | None, log_format: str, verbose: int) -> None:
    """Run the agent: watch the mappings and sync what settles, until stopped.

    SIGINT, SIGTERM or SIGHUP stop it: no new file or part starts, the parts on their
    way get `shutdown_timeout` to arrive, and the rest resumes at the next start from
    the parts already confirmed. Exit status: 0 stopped by a signal, 1 another agent
    runs on the ledger (or took it over while this one was suspended), 2 configuration
    or credentials error.
    """
    from syncagent.commands.run import run_agent
    from syncagent.logs import setup_logging

    # Logging first: a configuration error is then a line in the chosen format.
    setup_logging(verbose, log_format)
    config = _load(config_path, logged=True)
    sys.exit(run_agent(config))


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Show each mapping's synced, pending, in-flight and failed files, the last
    passes, and whether an agent is running. Safe while the agent runs.

    Exit status: 0 all well, 1 some files failed or a mapping is not syncing (its
    last pass could not run), or the ledger cannot be read now, 2 configuration
    error.
    """
    from syncagent.commands.status import show_status

    # status reads the ledger only: it never logs in, so needs no password.
    config = _load(config_path, as_json=as_json, need_password=False)
    sys.exit(show_status(config, as_json=as_json))


@main.group()
def db() -> None:
    """Manage the ledger database."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Apply the ledger's schema migrations (also done at every start)."""
    from syncagent.ledger import LedgerError, upgrade_ledger

    config = _load(config_path)
    try:
        before, after = upgrade_ledger(config.ledger_url)
    except LedgerError as exc:
        message = f"configuration error: {config.path}: ledger.url: {exc}"
        click.echo(f"syncagent: {message}", err=True)
        sys.exit(EXIT_CONFIG)
    if before == after:
        click.echo(f"ledger schema is up to date ({after})")
    else:
        click.echo(f"ledger schema upgraded from {before or 'nothing'} to {after}")


@db.command("forget")
@config_option
@click.argument("local", type=click.Path(path_type=Path))
def db_forget(config_path: Path | None, local: Path) -> None:
    """Forget what the mapping of the folder LOCAL synced, so that its next pass
    takes the folder as new. For a folder emptied or replaced on purpose, which
    passes refuse as an unmounted share. Nothing in Compass changes.

    Exit status: 0 done, 1 an agent runs on the ledger, 2 LOCAL is no mapping's.
    """
    from syncagent.commands.forget import forget_mapping

    config = _load(config_path, need_password=False)
    sys.exit(forget_mapping(config, local))

"""`syncagent status`: per mapping, what is synced, pending, in flight and failed.

Exit status: 0 nothing failed, 1 some entries failed or a mapping's last pass could not
run (listed), or the ledger cannot be read now (its disk failed, its database server
is away), 2 configuration error.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any, TextIO

from syncagent.agent.status import MappingStatus, Status, collect_status
from syncagent.config import Config, ConfigError, sqlite_file
from syncagent.ledger import Ledger, LedgerError, utcnow
from syncagent.logs import one_line, setup_logging
from syncagent.runtime import open_ledger

log = logging.getLogger(__name__)


def show_status(config: Config, *, as_json: bool) -> int:
    """Print the status and return the process exit code."""
    setup_logging()
    try:
        if _never_made(config.ledger_url):
            # Nothing synced yet: an empty ledger in memory, and no file left behind.
            ledger = Ledger("sqlite://")
        else:
            # Read-only: status works for accounts that may only read the ledger.
            ledger = open_ledger(config, read_only=True)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    except LedgerError as exc:
        log.error("%s", exc)  # its disk failed, or its database server is away
        return 1
    try:
        status = collect_status(config, ledger)
    except LedgerError as exc:
        log.error("%s", exc)
        return 1
    finally:
        ledger.close()
    if as_json:
        json.dump(status.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_status(status, sys.stdout)
    return 1 if status.troubled else 0


def _never_made(ledger_url: str) -> bool:
    """Whether the ledger is a SQLite file that no command has made yet."""
    path = sqlite_file(ledger_url)
    return path is not None and not path.exists()


def print_status(status: Status, out: TextIO) -> None:
    """Print the status for a person."""
    print(f"agent: {_agent_line(status)}", file=out)
    for mapping in status.mappings:
        _print_mapping(mapping, out)


def _agent_line(status: Status) -> str:
    agents = [p for p in status.processes if p.kind == "run"]
    alive = [p for p in agents if p.alive]
    if alive:
        p = alive[0]
        return f"running (pid {p.pid} on {p.hostname}, since {_when(p.started_at)})"
    if agents:
        return f"not running ({agents[0].reason})"
    return "not running"


_ARROWS = {"upload": "->", "download": "<-", "both": "<->"}


def _print_mapping(mapping: MappingStatus, out: TextIO) -> None:
    mode = ", drop box" if mapping.mode == "dropbox" else ""
    print(
        f"{one_line(str(mapping.local_root))} {_ARROWS[mapping.direction]} Compass "
        f"folder {mapping.folder_id} "
        f"({mapping.direction}{mode})",
        file=out,
    )
    if mapping.problem:
        print(f"  problem: {one_line(mapping.problem)}", file=out)
    pending = "?" if mapping.pending is None else str(mapping.pending)
    print(
        f"  synced {mapping.synced}, pending {pending}, in flight "
        f"{mapping.in_flight}, failed {mapping.failed}",
        file=out,
    )
    for kind, last in sorted(mapping.last_passes.items()):
        print(f"  last {kind} pass: {_pass_line(last)}", file=out)
    for upload in mapping.uploads:
        parts = f"{upload.parts_confirmed}/{upload.part_count or '?'} parts"
        name = one_line(upload.rel_path)
        print(f"  in flight: {name} ({upload.state}, {parts})", file=out)
    for failure in mapping.failures:
        name, reason = one_line(failure.rel_path), one_line(failure.reason)
        print(f"  failed: {name}: {reason}", file=out)


def _pass_line(last: dict[str, Any]) -> str:
    if last["outcome"] == "running":
        return f"running since {_when(last['started_at'])}"
    if last["finished_at"] is None:
        return f"interrupted (started {_when(last['started_at'])})"
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in last["counts"].items())
    done = f" ({counts})" if counts else ""
    why = f": {one_line(last['fatal'])}" if last.get("fatal") else ""
    return f"{last['outcome']} at {_when(last['finished_at'])}{done}{why}"


def _when(moment: datetime) -> str:
    seconds = (utcnow() - moment).total_seconds()
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if seconds < 120:
        return f"{stamp}, {seconds:.0f} s ago"
    return stamp

"""`syncagent status`: per mapping, what is synced, pending, in flight and failed.

Exit status: 0 nothing failed, 1 some entries failed (listed), 2 configuration error.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime
from typing import Any, TextIO

from syncagent.agent.status import MappingStatus, Status, collect_status
from syncagent.config import Config
from syncagent.ledger import Ledger, LedgerError, utcnow
from syncagent.logs import setup_logging

log = logging.getLogger(__name__)

# Two processes creating a new SQLite ledger at once can collide on its schema.
OPEN_ATTEMPTS = 3


def show_status(config: Config, *, as_json: bool) -> int:
    """Print the status and return the process exit code."""
    setup_logging()
    ledger = _open_ledger(config.ledger_url)
    if ledger is None:
        return 1
    try:
        status = collect_status(config, ledger)
    finally:
        ledger.close()
    if as_json:
        json.dump(status.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_status(status, sys.stdout)
    return 1 if status.failed else 0


def _open_ledger(url: str) -> Ledger | None:
    """Open the ledger; a first open racing an agent's first open is tried again."""
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return Ledger(url)
        except LedgerError as exc:
            if attempt == OPEN_ATTEMPTS:
                log.error("%s", exc)
            else:
                time.sleep(0.5)
    return None


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


def _print_mapping(mapping: MappingStatus, out: TextIO) -> None:
    mode = ", drop box" if mapping.mode == "dropbox" else ""
    print(
        f"{mapping.local_root} -> Compass folder {mapping.folder_id} "
        f"({mapping.direction}{mode})",
        file=out,
    )
    if mapping.problem:
        print(f"  problem: {mapping.problem}", file=out)
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
        print(f"  in flight: {upload.rel_path} ({upload.state}, {parts})", file=out)
    for failure in mapping.failures:
        print(f"  failed: {failure.rel_path}: {failure.reason}", file=out)


def _pass_line(last: dict[str, Any]) -> str:
    if last["outcome"] == "running":
        return f"running since {_when(last['started_at'])}"
    if last["finished_at"] is None:
        return f"interrupted (started {_when(last['started_at'])})"
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in last["counts"].items())
    done = f" ({counts})" if counts else ""
    return f"{last['outcome']} at {_when(last['finished_at'])}{done}"


def _when(moment: datetime) -> str:
    seconds = (utcnow() - moment).total_seconds()
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if seconds < 120:
        return f"{stamp}, {seconds:.0f} s ago"
    return stamp

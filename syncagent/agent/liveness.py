"""Whether a process registered on the ledger is alive: a recent heartbeat and, on this
host, a living process that is the one that registered (not a reused pid)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from syncagent.ledger import AgentInfo, utcnow
from syncagent.runtime import HEARTBEAT_SECONDS

# A heartbeat older than this means the process is gone or hung.
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
# Slack between a process starting and it registering on the ledger.
_START_SLACK = timedelta(seconds=5)


@dataclass(frozen=True)
class Liveness:
    """The verdict on one registered process, and why."""

    alive: bool
    reason: str


def liveness(
    info: AgentInfo,
    *,
    now: datetime | None = None,
    hostname: str | None = None,
    proc: Path = Path("/proc"),
) -> Liveness:
    """Judge one registered process: heartbeat first, then the pid on this host."""
    now = now or utcnow()
    age = (now - info.heartbeat_at).total_seconds()
    if now - info.heartbeat_at > STALE_AFTER:
        return Liveness(False, f"no heartbeat for {age:.0f} s")
    if info.hostname != (hostname or socket.gethostname()):
        return Liveness(True, f"heartbeat {age:.0f} s ago from host {info.hostname}")
    if not _pid_exists(info.pid):
        return Liveness(False, f"process {info.pid} is gone")
    started = process_start(info.pid, proc)
    if started is not None and started > info.started_at + _START_SLACK:
        return Liveness(False, f"process {info.pid} is gone (its pid was reused)")
    return Liveness(True, f"process {info.pid} alive, heartbeat {age:.0f} s ago")


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int, proc: Path = Path("/proc")) -> datetime | None:
    """When a process started, from /proc (Linux); None where that cannot be read."""
    try:
        stat_text = (proc / str(pid) / "stat").read_text()
        boot_line = next(
            line
            for line in (proc / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat_text.rsplit(")", 1)[1].split()[19])
        boot = int(boot_line.split()[1])
        per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(boot + ticks / per_second, tz=utcnow().tzinfo)

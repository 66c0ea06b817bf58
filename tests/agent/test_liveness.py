"""Is an agent running: a recent heartbeat and, on this host, its own living process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from syncagent.agent.liveness import liveness, process_start
from syncagent.ledger import AgentInfo, utcnow


def info(pid: int, *, host: str = "here", beat_age: float = 5, age: float = 60):
    now = utcnow()
    return AgentInfo(
        owner=f"{host}:{pid}:abcd",
        kind="run",
        hostname=host,
        pid=pid,
        started_at=now - timedelta(seconds=age),
        heartbeat_at=now - timedelta(seconds=beat_age),
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_process_with_a_recent_heartbeat_is_alive() -> None:
    verdict = liveness(info(os.getpid(), age=0), hostname="here")
    assert verdict.alive
    assert f"process {os.getpid()} alive" in verdict.reason


def test_a_dead_pid_on_this_host_is_not_running() -> None:
    pid = dead_pid()
    verdict = liveness(info(pid), hostname="here")
    assert not verdict.alive
    assert verdict.reason == f"process {pid} is gone"


def test_a_stale_heartbeat_is_not_running_whatever_the_pid() -> None:
    verdict = liveness(info(os.getpid(), beat_age=3600), hostname="here")
    assert not verdict.alive
    assert verdict.reason == "no heartbeat for 3600 s"


def test_another_host_is_judged_by_its_heartbeat_alone() -> None:
    verdict = liveness(info(dead_pid(), host="far"), hostname="here")
    assert verdict.alive
    assert "from host far" in verdict.reason


def test_a_reused_pid_is_not_the_agent(tmp_path: Path) -> None:
    """The pid lives, but its process started long after the agent registered."""
    pid = os.getpid()
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    boot = int((utcnow() - timedelta(hours=1)).timestamp())
    (proc / "stat").write_text(f"cpu  1 2 3\nbtime {boot}\n")
    ticks = os.sysconf("SC_CLK_TCK") * 3590  # started 10 s ago
    fields = ["S"] + ["0"] * 18 + [str(ticks)] + ["0"] * 10
    (proc / str(pid) / "stat").write_text(f"{pid} (python (x)) {' '.join(fields)}\n")

    started = process_start(pid, proc)
    assert started is not None
    assert abs((utcnow() - started).total_seconds() - 10) < 2

    verdict = liveness(info(pid, age=600), hostname="here", proc=proc)
    assert not verdict.alive
    assert verdict.reason == f"process {pid} is gone (its pid was reused)"
    assert liveness(info(pid, age=5), hostname="here", proc=proc).alive


def test_process_start_reads_this_process_from_proc() -> None:
    started = process_start(os.getpid())
    assert started is not None
    assert timedelta(0) <= utcnow() - started < timedelta(hours=1)

"""Helpers for the agent's end-to-end tests: `syncagent run` as a real subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.support import SYNCAGENT


def agent_settings(**values: float) -> str:
    """An [agent] table for write_config's `extra`."""
    return "[agent]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


class Agent:
    """One `syncagent run` process with its log in a file."""

    def __init__(self, config: Path, name: str = "agent") -> None:
        self.config = config
        self.log_path = config.parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Agent:
        """Start the process (appending to its log)."""
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*SYNCAGENT, "run", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.config.parent,
        )
        log.close()
        self.wait_started()
        return self

    def wait_started(self) -> None:
        """Wait until the agent has opened its ledger and started watching."""
        self.wait_for("the agent to start", lambda: "agent started" in self.log())

    def log(self) -> str:
        """Everything the agent logged so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        """Send a signal to the agent."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit and return its code."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGTERM and wait for the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def status(self) -> dict[str, Any]:
        """`syncagent status --json` for the agent's config."""
        done = subprocess.run(
            [*SYNCAGENT, "status", "--config", str(self.config), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 1) and done.stdout, done.stderr
        return dict(json.loads(done.stdout))

    def wait_for(
        self, what: str, predicate: Callable[[], bool], timeout: float = 60
    ) -> None:
        """Poll until `predicate` holds; fail with the agent's log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if predicate():
            return
        raise AssertionError(f"timed out waiting for {what}; agent log:\n{self.log()}")

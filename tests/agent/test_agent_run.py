"""End-to-end: how `syncagent run` stops and what it logs when Compass goes away."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.agent_support import Agent, agent_settings
from tests.e2e.support import write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def first_pull_done(agent: Agent) -> bool:
    last = agent.status()["mappings"][0]["last_passes"].get("pull")
    return last is not None and last["outcome"] == "ok"


def retries_announced(log: str) -> list[str]:
    return re.findall(r"trying the pull pass again in (\d+) s", log)


def test_an_outage_logs_one_error_per_failed_pull_and_its_true_next_attempt(
    tmp_path: Path, emulator: EmulatorServer, agents: list[Agent]
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(mirror), "folder_id": 1001, "direction": "download"}],
        extra=agent_settings(pull_interval=2),
    )
    agent = Agent(config).start()
    agents.append(agent)
    agent.wait_for("the first pull", lambda: first_pull_done(agent))
    emulator.stop()

    # The first pull against the stopped server spends its retries; the next ones
    # are refused at once for a while, so a few passes fail within seconds.
    agent.wait_for(
        "three failed pulls", lambda: len(retries_announced(agent.log())) >= 3, 120
    )
    lines = agent.log().splitlines()
    last = max(i for i, line in enumerate(lines) if "pull pass again" in line)
    log = "\n".join(lines[: last + 1])
    announced = retries_announced(log)

    assert all(int(seconds) <= 2 for seconds in announced), log
    assert log.count(" ERROR ") == len(announced), log
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0


def test_sighup_stops_the_agent_like_sigterm(
    tmp_path: Path, emulator: EmulatorServer, agents: list[Agent]
) -> None:
    """Closing the terminal of a foreground agent sends SIGHUP."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    config = write_config(
        tmp_path, emulator.url, [{"local": str(outbox), "folder_id": 1001}]
    )
    agent = Agent(config).start()
    agents.append(agent)

    agent.signal(signal.SIGHUP)

    assert agent.wait() == 0
    assert "stopping (SIGHUP)" in agent.log()
    assert "agent stopped" in agent.log()
    assert agent.status()["processes"] == []

"""Shared fixtures: a Compass emulator on a free loopback port, per test, and the
agents a test starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.agent_support import Agent


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """A fresh emulator with the default seed: user demo/demo, folders 1001, 1002."""
    server = EmulatorServer(data_dir=tmp_path / "emulator")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    """Agents a test starts; any still running at the end are killed."""
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.kill()

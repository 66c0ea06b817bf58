"""Shared fixtures: a Compass emulator on a free loopback port, per test, the agents
a test starts, and ledger URLs.

A test that takes `ledger_url` runs on SQLite, and also on PostgreSQL when
SYNCAGENT_TEST_POSTGRES names a server (`postgresql+psycopg://user@127.0.0.1:port`,
no database: each test gets a database of its own). `.ci/run` starts a private
PostgreSQL server for that.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

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


POSTGRES = os.environ.get("SYNCAGENT_TEST_POSTGRES", "").rstrip("/")
LEDGER_BACKENDS = ["sqlite", "postgresql"] if POSTGRES else ["sqlite"]


@pytest.fixture(params=LEDGER_BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty ledger database on each backend under test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    name = f"ledger_{uuid.uuid4().hex[:12]}"
    server = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"{POSTGRES}/{name}"
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        server.dispose()

"""Fixtures for the emulator's tests: a client logged in as demo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emu_helpers import Api

from syncagent.emulator.server import EmulatorServer


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[Api]:
    """A client logged in as demo on a fresh emulator."""
    client = Api(emulator.url)
    try:
        yield client
    finally:
        client.close()

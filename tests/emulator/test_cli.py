"""`syncagent emulator` on the command line, and first-run seeding."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from emu_helpers import Api

from syncagent.cli import main
from syncagent.emulator.server import EmulatorServer


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("the emulator printed nothing")
    return process.stdout.readline()


def test_command_serves_seeds_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "syncagent",
        "emulator",
        "--port=0",
        f"--data={tmp_path / 'data'}",
        "--user=alice:secret",
        "--folder=7:Seven",
        "--folder=8:Eight:7",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = _first_line(process, timeout=20)
        url = line.split()[4]
        api = Api(url, "alice", "secret")
        listing = api.get("/api/v1/folders/7/subfolders").json()
        api.close()
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert line.startswith("Compass emulator listening on http://127.0.0.1:")
    assert [(f["id"], f["name"]) for f in listing["folders"]] == [(8, "Eight")]
    assert returncode == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--folder=Seven", "expected ID:NAME[:PARENT_ID]"),
        ("--user=alice", "expected NAME:PASSWORD"),
        ("--faults=api:999@0.5", "--faults"),
    ],
)
def test_bad_options_are_usage_errors(option: str, message: str) -> None:
    result = CliRunner().invoke(main, ["emulator", option])

    assert result.exit_code == 2
    assert message in result.output


def test_default_seed_and_existing_folder_ids(tmp_path: Path) -> None:
    with EmulatorServer(data_dir=tmp_path) as first:
        api = Api(first.url)
        top = [
            api.get(f"/api/v1/folders/{f}/subfolders").json()["name"]
            for f in (1001, 1002)
        ]
        api.close()
    folders = [(1001, "Dropbox", None), (1003, "Archive", 1002)]
    with EmulatorServer(
        data_dir=tmp_path, users=[("bob", "pw")], folders=folders
    ) as second:
        bob = Api(second.url, "bob", "pw")
        archive = bob.get("/api/v1/folders/1002/subfolders")
        dropbox = bob.get("/api/v1/folders/1001/subfolders")
        bob.close()

    assert top == ["Dropbox", "Library"]
    assert archive.status_code == 403
    assert dropbox.status_code == 200
    assert dropbox.json()["permissions"]["upload"] is True

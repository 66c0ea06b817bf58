"""End-to-end: a file that cannot be uploaded as named is warned about once per change
of the file, and stays listed as failed at every pass and in `status`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from syncagent.config import load_config
from syncagent.emulator.server import EmulatorServer
from syncagent.engine.progress import NoProgress
from syncagent.engine.report import PassReport
from syncagent.runtime import open_runtime, run_upload_passes
from tests.e2e.support import SYNCAGENT, write_config

pytestmark = pytest.mark.e2e

NOT_UTF8 = b"bad\xffname.txt"
REFUSED = "back\\slash.txt"  # Compass takes a backslash for a path: never sent


def sync_in_process(config: Path) -> PassReport:
    with open_runtime(load_config(config), "sync") as runtime:
        [report] = run_upload_passes(runtime, NoProgress())
    return report


def warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The engine's warnings since the last call, by path."""
    paths = sorted(
        r.getMessage().split(":", 1)[0]
        for r in caplog.records
        if r.name.startswith("syncagent.engine") and r.levelname == "WARNING"
    )
    caplog.clear()
    return paths


def change(path: bytes | Path) -> None:
    """Change a file after the last record of its failure (its ctime moves on)."""
    time.sleep(0.05)  # past the coarse clock tick of the file system's times
    with open(path, "ab") as stream:
        stream.write(b"+")


def test_a_name_that_cannot_be_uploaded_warns_once_per_change(
    tmp_path: Path, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    bad = os.fsencode(root) + b"/" + NOT_UTF8
    with open(bad, "wb") as stream:
        stream.write(b"x")
    (root / REFUSED).write_bytes(b"y")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    shown = sorted(["bad\\xffname.txt", REFUSED])

    first = sync_in_process(config)
    assert sorted(f.rel_path for f in first.failures) == shown
    assert warned(caplog) == shown

    # Passes for other files: both still fail and are listed, without a warning.
    for name in ("one.txt", "two.txt"):
        (root / name).write_bytes(name.encode())
        again = sync_in_process(config)
        assert again.uploaded == 1
        assert sorted(f.rel_path for f in again.failures) == shown
        assert all(f.permanent for f in again.failures)
        assert warned(caplog) == []

    # A change of the file: one warning more, then quiet again.
    change(bad)
    change(root / REFUSED)
    assert len(sync_in_process(config).failures) == 2
    assert warned(caplog) == shown
    assert len(sync_in_process(config).failures) == 2
    assert warned(caplog) == []

    status = subprocess.run(
        [*SYNCAGENT, "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 1, status.stderr
    [mapping] = json.loads(status.stdout)["mappings"]
    assert sorted(f["rel_path"] for f in mapping["failures"]) == shown


def test_a_file_held_open_for_writing_warns_once_and_goes_up_once_closed(
    tmp_path: Path, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    render = root / "render.mov"
    with open(render, "wb") as writer:  # a render that paused, still open
        writer.write(b"frames so far")
        writer.flush()
        old = time.time() - 60
        os.utime(render, (old, old))  # it held still for long

        for _ in range(3):
            report = sync_in_process(config)
            assert [(f.rel_path, f.permanent) for f in report.failures] == [
                ("render.mov", False)
            ]
            assert "open for writing" in report.failures[0].reason
        assert warned(caplog) == ["render.mov"]  # once, not at every pass

    closed = sync_in_process(config)
    assert (closed.uploaded, closed.failures) == (1, [])

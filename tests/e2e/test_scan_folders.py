"""End-to-end: a local folder gets a Compass folder only when it holds something to
upload, after the mapping's filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.support import RemoteView, run_sync, write_config

pytestmark = pytest.mark.e2e


def test_folders_with_nothing_to_upload_get_no_compass_folder(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    root = tmp_path / "media"
    for rel_dir in ("cuts/raw", "scratch/deeper", "notes", "empty"):
        (root / rel_dir).mkdir(parents=True)
    (root / "cuts" / "raw" / "a.mov").write_bytes(b"a")
    (root / "cuts" / "raw" / "a.txt").write_bytes(b"left out by include")
    (root / "scratch" / "deeper" / "b.tmp").write_bytes(b"left out by exclude")
    (root / "notes" / "c.txt").write_bytes(b"left out by include")
    mapping = {
        "local": "media",
        "folder_id": 1001,
        "include": ["*.mov"],
        "exclude": ["*.tmp"],
    }
    config = write_config(tmp_path, emulator.url, [mapping])
    view = RemoteView(emulator.url)

    first = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert first.mapping["folders_created"] == 2
    assert sorted(view.tree(1001)) == ["cuts/raw/a.mov"]
    assert list(view.subfolders(1001)) == ["cuts"]

    # A wanted file appears in one of them: only then is its folder made.
    (root / "scratch" / "deeper" / "d.mov").write_bytes(b"d")
    second = run_sync(config)

    assert second.mapping["folders_created"] == 2
    assert sorted(view.subfolders(1001)) == ["cuts", "scratch"]
    assert sorted(view.tree(1001)) == ["cuts/raw/a.mov", "scratch/deeper/d.mov"]
    assert run_sync(config).mapping["folders_created"] == 0
    view.close()

"""End-to-end: a run stopped dead after Compass completed an upload and before the
ledger recorded it, and the file renamed, moved or deleted before the next run."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from syncagent.ledger import Ledger, UploadStart
from tests.e2e.compass_writer import CompassWriter
from tests.e2e.support import RemoteView, run_sync, write_config


def dead_owner() -> str:
    """The owner of an upload whose process is gone: a process of this host that
    has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}:dead"


def crashed_after_complete(root: Path, config: Path, url: str, checkpoint: str) -> int:
    """Leave a.bin as a crash right after `complete` leaves it: the asset complete
    in Compass, the upload in the ledger at its last checkpoint ("completing" for
    uploads of several parts, "created" for one part), no entry. Returns the
    asset's ID."""
    data = os.urandom(300_000)
    (root / "a.bin").write_bytes(data)
    st = (root / "a.bin").stat()
    writer = CompassWriter(url)
    asset_id = writer.upload(1001, "a.bin", data)
    writer.close()

    ledger = Ledger(f"sqlite:///{config.parent / 'state' / 'ledger.db'}")
    mapping_id = ledger.ensure_mapping(str(root), 1001)
    start = UploadStart(
        "a.bin", "new", 1001, "a.bin", None, st.st_size, st.st_mtime_ns, st.st_ino
    )
    [upload] = ledger.begin_uploads(
        mapping_id, [start], dead_owner(), timedelta(minutes=10)
    )
    ledger.set_upload_assets({upload.upload_id: asset_id})
    if checkpoint == "completing":
        checksum = hashlib.md5(data).hexdigest()
        ledger.set_upload_completing(upload.upload_id, checksum)
    ledger.close()
    return asset_id


@pytest.mark.parametrize("checkpoint", ["completing", "created"])
@pytest.mark.parametrize(
    "case",
    [
        ("rename", "keep", {"b.bin": "same asset"}),
        ("move", "remove", {"sub/a.bin": "new asset"}),
        ("delete", "remove", {}),
    ],
)
def test_a_file_changed_after_an_unrecorded_upload_leaves_no_orphan(
    tmp_path: Path,
    emulator: EmulatorServer,
    case: tuple[str, str, dict[str, str]],
    checkpoint: str,
) -> None:
    change, on_local_delete, expected = case
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "state").mkdir()
    mapping = {"local": str(root), "folder_id": 1001}
    mapping["on_local_delete"] = on_local_delete
    config = write_config(tmp_path, emulator.url, [mapping])
    asset_id = crashed_after_complete(root, config, emulator.url, checkpoint)

    if change == "rename":
        (root / "a.bin").rename(root / "b.bin")
    elif change == "move":
        (root / "sub").mkdir()
        (root / "a.bin").rename(root / "sub" / "a.bin")
    else:
        (root / "a.bin").unlink()
    first = run_sync(config)
    second = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert first.failures() == {}
    assert "before it was uploaded" not in first.stderr
    assert second.mapping["uploaded"] == 0 and second.mapping["removed"] == 0
    tree = RemoteView(emulator.url).tree(1001)
    assert {path: len(assets) for path, assets in tree.items()} == dict.fromkeys(
        expected, 1
    )
    for path, which in expected.items():
        same = tree[path][0]["id"] == asset_id
        assert same == (which == "same asset")


def test_an_unrecorded_one_part_upload_is_recorded_without_sending_it_again(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "state").mkdir()
    config = write_config(
        tmp_path, emulator.url, [{"local": str(root), "folder_id": 1001}]
    )
    asset_id = crashed_after_complete(root, config, emulator.url, "created")
    writer = CompassWriter(emulator.url)
    writer.reset_stats()

    first = run_sync(config)
    second = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert (first.mapping["uploaded"], first.mapping["bytes_sent"]) == (1, 0)
    assert writer.stats()["part_uploads"] == 0
    assert (second.mapping["uploaded"], second.mapping["unchanged"]) == (0, 1)
    tree = RemoteView(emulator.url).tree(1001)
    assert [asset["id"] for asset in tree["a.bin"]] == [asset_id]
    writer.close()

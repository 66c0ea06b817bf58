"""End-to-end: `syncagent sync` against an emulator whose ingest is asynchronous.

After `complete` answers 204 the emulator keeps each asset as it was for a while
(--ingest-delay), so the agent's read-back after complete has to wait for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.support import (
    RemoteView,
    assert_mirrored,
    md5_file,
    run_sync,
    write_config,
)
from tests.e2e.test_agent import ledger_of

MIB = 1024 * 1024
INGEST_DELAY = 1.5
ASSET_READS = "GET /api/v1/asset_items/{asset_id}"


@pytest.fixture
def slow_ingest(tmp_path: Path) -> Iterator[EmulatorServer]:
    server = EmulatorServer(data_dir=tmp_path / "emulator", ingest_delay=INGEST_DELAY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _make_tree(root: Path) -> None:
    rng = random.Random(7)
    for index in range(4):
        folder = root / f"day {index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"clip_{index}.dat").write_bytes(rng.randbytes(1000 + index))
    (root / "reel.dat").write_bytes(rng.randbytes(11 * MIB + 7))  # three parts
    (root / "empty.txt").write_bytes(b"")


def _asset_reads(view: RemoteView) -> int:
    return int(view.stats()["requests"].get(ASSET_READS, 0))


def _assert_recorded(
    config: Path, root: Path, assets: dict[str, dict[str, Any]]
) -> None:
    ledger = ledger_of(config)
    try:
        [mapping_id] = ledger.mappings()
        entries = {
            rel_path: entry
            for rel_path, entry in ledger.entries(mapping_id).items()
            if entry.kind == "file"
        }
    finally:
        ledger.close()
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert sorted(entries) == sorted(files)
    for rel_path, path in files.items():
        assert entries[rel_path].checksum == md5_file(path), rel_path
        assert entries[rel_path].asset_id == assets[rel_path]["id"], rel_path


def test_sync_waits_for_an_asynchronous_ingest(
    tmp_path: Path, slow_ingest: EmulatorServer
) -> None:
    root = tmp_path / "media"
    _make_tree(root)
    config = write_config(
        tmp_path, slow_ingest.url, [{"local": "media", "folder_id": 1001}]
    )
    view = RemoteView(slow_ingest.url)

    started = time.monotonic()
    first = run_sync(config)
    elapsed = time.monotonic() - started

    assert first.returncode == 0, first.stderr
    assert first.mapping["uploaded"] == 6
    assert first.mapping["failures"] == []
    assets = assert_mirrored(root, view, 1001)
    _assert_recorded(config, root, assets)
    # The agent read each asset back more than once: it saw it not yet complete.
    assert _asset_reads(view) > 6
    assert elapsed >= INGEST_DELAY

    # A new version: the asset shows the previous file until the new one is in.
    (root / "day 0" / "clip_0.dat").write_bytes(b"a new version of the clip")
    second = run_sync(config)

    assert second.returncode == 0, second.stderr
    assert second.mapping["failures"] == []
    assets = assert_mirrored(root, view, 1001)
    _assert_recorded(config, root, assets)
    view.close()


def test_an_ingest_longer_than_the_wait_is_verified_by_the_next_run(
    tmp_path: Path,
) -> None:
    server = EmulatorServer(data_dir=tmp_path / "emulator", ingest_delay=3.0)
    server.start()
    try:
        root = tmp_path / "media"
        _make_tree(root)
        config = write_config(
            tmp_path,
            server.url,
            [{"local": "media", "folder_id": 1001}],
            ingest_wait="1s",
        )
        view = RemoteView(server.url)

        waiting = run_sync(config)

        assert waiting.returncode == 1
        reasons = set(waiting.failures().values())
        assert len(waiting.failures()) == 6
        assert all("Compass is still ingesting it" in r for r in reasons), reasons
        sent = view.stats()["part_bytes_received"]

        time.sleep(3.0)  # the ingest is done
        verified = run_sync(config)

        assert verified.returncode == 0, verified.failures()
        assert view.stats()["part_bytes_received"] == sent  # nothing sent again
        assets = assert_mirrored(root, view, 1001)  # each file once, complete
        _assert_recorded(config, root, assets)

        # A revision: until it is in, the asset shows the version before it.
        (root / "day 0" / "clip_0.dat").write_bytes(b"a new version of the clip")
        revising = run_sync(config)
        assert list(revising.failures()) == ["day 0/clip_0.dat"]
        time.sleep(3.0)
        revised = run_sync(config)

        assert revised.returncode == 0, revised.failures()
        _assert_recorded(config, root, assert_mirrored(root, view, 1001))
        view.close()
    finally:
        server.stop()

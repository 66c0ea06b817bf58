"""Archived assets in a pull, end to end against the emulator over real HTTP.

An archived asset is skipped with a notice; with `restore_archived = true` the pull
asks Compass for a restore and a pull after the restore is ready brings it down.
Assets are archived with plain httpx calls (`compass_writer.py`), as another Compass
user would.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from syncagent.commands.sync import sync_mappings
from syncagent.config import load_config
from syncagent.emulator.server import EmulatorServer
from syncagent.engine.progress import NoProgress
from syncagent.engine.pull_report import PullReport
from syncagent.runtime import open_runtime
from tests.e2e.compass_writer import CompassWriter
from tests.e2e.support import local_files, run_sync, write_config

pytestmark = pytest.mark.e2e

ROOT = 1001
RESTORE_SECONDS = 5 * 60
"""How long the emulator takes to restore from the standard tier (archive.py)."""

SKIPPED = "archived in Compass; skipped (restore_archived = true restores it)"
ASKED = "archived in Compass; restore asked, pulled once restored"
RESTORING = "archived in Compass; being restored, pulled once restored"


@pytest.fixture
def writer(emulator: EmulatorServer) -> Iterator[CompassWriter]:
    client = CompassWriter(emulator.url)
    try:
        yield client
    finally:
        client.close()


def mirror_config(tmp_path: Path, url: str, **mapping: object) -> Path:
    entry = {"local": "mirror", "folder_id": ROOT, "direction": "download", **mapping}
    return write_config(tmp_path, url, [entry])


def pull_once(config: Path) -> PullReport:
    """One `syncagent sync` of a download mapping, in this process."""
    with open_runtime(load_config(config), "sync") as runtime:
        [report] = sync_mappings(runtime, NoProgress(), dry_run=False)
    assert isinstance(report, PullReport)
    return report


def contents(root: Path) -> dict[str, bytes]:
    return {rel: path.read_bytes() for rel, path in local_files(root).items()}


def notices(report: PullReport) -> dict[str, str]:
    return {item.rel_path: item.reason for item in report.notices}


def archive(writer: CompassWriter, asset_ids: list[int]) -> None:
    writer.call(
        "POST", "/api/v1/asset_items/archives", {"standard": asset_ids, "deep": []}
    )


def advance_clock(writer: CompassWriter, seconds: float) -> None:
    writer.call("POST", "/_emulator/clock", {"advance": seconds})


def requests(writer: CompassWriter) -> dict[str, Any]:
    return dict(writer.stats()["requests"])


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (30, 160, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_archived_asset_is_skipped_with_a_notice_and_never_downloaded(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    writer.upload(ROOT, "kept.txt", b"in standard storage\n")
    cold = writer.upload(ROOT, "cold.bin", b"in the archive\n")
    archive(writer, [cold])
    writer.reset_stats()
    config = mirror_config(tmp_path, emulator.url)

    first = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert first.mapping["downloaded"] == 1
    assert first.mapping["failures"] == []
    assert [(n["rel_path"], n["reason"]) for n in first.mapping["notices"]] == [
        ("cold.bin", f"asset {cold} {SKIPPED}")
    ]
    assert contents(tmp_path / "mirror") == {"kept.txt": b"in standard storage\n"}
    # The archived asset was neither asked for nor restored.
    asked = requests(writer)
    assert asked.get("POST /api/v3/downloads") == 1
    assert "POST /api/v1/asset_items/restores" not in asked

    second = pull_once(config)

    assert (second.downloaded, second.unchanged) == (0, 1)
    assert notices(second) == {"cold.bin": f"asset {cold} {SKIPPED}"}
    assert writer.asset(cold)["restore_status"] == "not restored"


def test_restore_archived_asks_a_restore_and_a_later_pull_downloads_it(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    data = b"brought back from the archive\n" * 100
    cold = writer.upload(ROOT, "cold.bin", data)
    archive(writer, [cold])
    config = mirror_config(tmp_path, emulator.url, restore_archived=True)

    first = pull_once(config)

    assert (first.downloaded, first.failures) == (0, [])
    assert notices(first) == {"cold.bin": f"asset {cold} {ASKED}"}
    restoring = writer.asset(cold)
    assert (restoring["restoring"], restoring["restore_status"]) == (True, "restoring")
    assert contents(tmp_path / "mirror") == {}

    # Before the restore is ready, a pull waits for it: another request would
    # start another restore job in Compass.
    advance_clock(writer, RESTORE_SECONDS - 60)
    writer.reset_stats()
    waiting = pull_once(config)

    assert (waiting.downloaded, waiting.failures) == (0, [])
    assert notices(waiting) == {"cold.bin": f"asset {cold} {RESTORING}"}
    assert "POST /api/v1/asset_items/restores" not in requests(writer)
    assert "POST /api/v3/downloads" not in requests(writer)
    assert writer.asset(cold)["restoring"] is True

    # Once the clock passes the ready time, the next pull downloads it.
    advance_clock(writer, 60)
    done = pull_once(config)

    assert (done.downloaded, done.failures, done.notices) == (1, [], [])
    assert contents(tmp_path / "mirror") == {"cold.bin": data}
    # The pull asks for a permanent restore: the asset is out of the archive.
    restored = writer.asset(cold)
    assert (restored["archived"], restored["archive_status"]) == (False, "not archived")

    after = pull_once(config)

    assert (after.downloaded, after.unchanged, after.notices) == (0, 1, [])


def test_a_synced_file_stays_while_its_asset_is_archived_and_revised(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    asset_id = writer.upload(ROOT, "notes.txt", b"first version\n")
    config = mirror_config(tmp_path, emulator.url)
    assert pull_once(config).downloaded == 1
    archive(writer, [asset_id])

    unchanged = pull_once(config)
    writer.revise(asset_id, "notes.txt", b"second version\n")
    revised = pull_once(config)

    assert (unchanged.unchanged, unchanged.notices) == (1, [])
    assert (revised.updated, revised.failures) == (0, [])
    assert notices(revised) == {"notes.txt": f"asset {asset_id} {SKIPPED}"}
    assert contents(tmp_path / "mirror") == {"notes.txt": b"first version\n"}


def test_proxies_of_an_archived_asset_wait_for_its_restore(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    image = png_bytes()
    picture = writer.upload(ROOT, "picture.png", image)
    writer.wait_idle()
    archive(writer, [picture])
    config = mirror_config(
        tmp_path, emulator.url, restore_archived=True, proxies=["small_thumbnail"]
    )

    first = pull_once(config)

    assert (first.downloaded, first.proxies, first.failures) == (0, 0, [])
    assert notices(first) == {"picture.png": f"asset {picture} {ASKED}"}

    advance_clock(writer, RESTORE_SECONDS)
    done = pull_once(config)

    assert (done.downloaded, done.proxies, done.failures) == (1, 1, [])
    mirrored = contents(tmp_path / "mirror")
    assert mirrored.pop("picture.png") == image
    [thumbnail] = mirrored
    assert thumbnail.startswith(".proxies/picture.png/small_thumbnail")


def test_a_proxies_only_mirror_restores_an_archived_asset_for_its_proxies(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    picture = writer.upload(ROOT, "picture.png", png_bytes())
    writer.wait_idle()
    archive(writer, [picture])
    config = mirror_config(
        tmp_path,
        emulator.url,
        restore_archived=True,
        proxies=["small_thumbnail"],
        proxies_only=True,
    )

    first = pull_once(config)

    assert (first.proxies, first.failures) == (0, [])
    assert notices(first) == {"picture.png": f"asset {picture} {ASKED}"}
    assert writer.asset(picture)["restoring"] is True

    advance_clock(writer, RESTORE_SECONDS)
    done = pull_once(config)

    assert (done.downloaded, done.proxies, done.failures) == (0, 1, [])
    [thumbnail] = contents(tmp_path / "mirror")
    assert thumbnail.startswith(".proxies/picture.png/small_thumbnail")


def test_a_refused_restore_is_noted_and_the_pull_goes_on(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    writer.upload(ROOT, "kept.txt", b"in standard storage\n")
    cold = writer.upload(ROOT, "cold.bin", b"in the archive\n")
    archive(writer, [cold])
    writer.call(
        "POST",
        "/_emulator/users",
        {
            "name": "reader",
            "password": "pw",
            "permissions": {"1001": ["view", "download"]},
        },
    )
    entry = {
        "local": "mirror",
        "folder_id": ROOT,
        "direction": "download",
        "restore_archived": True,
    }
    config = write_config(
        tmp_path, emulator.url, [entry], username="reader", password="pw"
    )

    report = pull_once(config)

    assert (report.downloaded, report.failures) == (1, [])
    assert notices(report) == {
        "cold.bin": f"asset {cold} {ASKED}",
        f"asset {cold}": "restore refused: POST /api/v1/asset_items/restores: "
        f"no upload permission on asset item {cold}",
    }
    assert writer.asset(cold)["restore_status"] == "not restored"


def test_an_asset_restored_for_a_time_comes_down_at_once(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    cold = writer.upload(ROOT, "cold.bin", b"out for a week\n")
    archive(writer, [cold])
    writer.call(
        "POST", "/api/v1/asset_items/restores", {"asset_item_ids": [cold], "expiry": 7}
    )
    advance_clock(writer, RESTORE_SECONDS)
    config = mirror_config(tmp_path, emulator.url)

    first = pull_once(config)

    # Restored for a time, it can be downloaded now: no restore to ask for.
    assert (first.downloaded, first.notices) == (1, [])
    assert contents(tmp_path / "mirror") == {"cold.bin": b"out for a week\n"}


def test_proxies_of_a_folder_the_user_may_not_download_from_wait_without_failing(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    locked = writer.make_folder("locked", ROOT)
    picture = writer.upload(locked, "picture.png", png_bytes())
    writer.upload(ROOT, "open.png", png_bytes())
    writer.wait_idle()
    writer.call(
        "POST",
        "/_emulator/users",
        {
            "name": "viewer",
            "password": "pw",
            "permissions": {str(ROOT): ["view", "download"], str(locked): ["view"]},
        },
    )
    entry = {
        "local": "mirror",
        "folder_id": ROOT,
        "direction": "download",
        "proxies": ["small_thumbnail"],
    }
    config = write_config(
        tmp_path, emulator.url, [entry], username="viewer", password="pw"
    )

    for _ in range(2):
        report = pull_once(config)

        assert report.failures == []
        assert notices(report) == {
            "locked/picture.png": f"asset {picture}: no download permission on its "
            "folder"
        }
    assert sorted(contents(tmp_path / "mirror")) == [
        ".proxies/open.png/small_thumbnail.jpg",
        "open.png",
    ]

"""End-to-end: kill -9 at random instants; a server that fails, expires, resets."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.compass_writer import CompassWriter
from tests.e2e.support import (
    SYNCAGENT,
    RemoteView,
    assert_mirrored,
    local_files,
    run_sync,
    write_config,
)
from tests.e2e.test_agent import ledger_of

MIB = 1024 * 1024
KILL_RUNS = 20


def add_round(root: Path, index: int, rng: random.Random) -> int:
    """New files for one round: two of several parts and a few small ones."""
    folder = root / f"round-{index:02d}"
    folder.mkdir(parents=True)
    total = 0
    for name, size in [
        ("a.mov", 3 * 5 * MIB + rng.randrange(MIB)),
        ("b.mov", 2 * 5 * MIB + rng.randrange(MIB)),
        ("c.jpg", rng.randrange(1, 50_000)),
        ("d.jpg", rng.randrange(1, 50_000)),
    ]:
        (folder / name).write_bytes(rng.randbytes(size))
        total += size
    return total


PARTS_PER_ROUND = 4 + 3 + 1 + 1


def start_and_kill(config: Path, view: RemoteView, rng: random.Random) -> None:
    """Start a sync and kill -9 it at a random instant of its work.

    The instant is drawn as "after k part uploads reached the server, plus a jitter of
    a few ms" (k = 0: shortly after its first API call), so that kills land across the
    whole upload (creating assets, sending parts, confirming, completing) rather than
    mostly during the start-up of the process.
    """
    parts_seen = rng.randrange(PARTS_PER_ROUND)
    jitter = rng.uniform(0, 0.2 if parts_seen == 0 else 0.04)
    base = view.stats()
    command = [*SYNCAGENT, "sync", "--config", str(config), "--json"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        now = view.stats()
        if parts_seen == 0:
            reached = sum(now["requests"].values()) > sum(base["requests"].values()) + 2
        else:
            reached = now["part_uploads"] >= base["part_uploads"] + parts_seen
        if reached:
            break
        time.sleep(0.005)
    time.sleep(jitter)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def test_kill_9_at_random_instants_loses_and_duplicates_nothing(
    tmp_path: Path, emulator: EmulatorServer, ledger_url: str
) -> None:
    rng = random.Random(20261204)
    root = tmp_path / "media"
    root.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": "media", "folder_id": 1001}],
        ledger=ledger_url,
    )
    view = RemoteView(emulator.url)

    add_round(root, 0, rng)
    assert run_sync(config).returncode == 0

    resumed_bytes = 0
    pending_bytes = 0
    for index in range(1, KILL_RUNS + 1):
        add_round(root, index, rng)
        start_and_kill(config, view, rng)

        # Bytes a restart from zero would send: every file not yet complete.
        remote = view.tree(1001)
        pending_bytes += sum(
            path.stat().st_size
            for rel_path, path in local_files(root).items()
            if rel_path not in remote
            or all(asset["status"] != "complete" for asset in remote[rel_path])
        )
        if index <= 3:
            # A dry run names every file the next sync will send, resumed or new.
            planned = run_sync(config, dry_run=True).mapping["planned"]
            unsent = {
                rel_path
                for rel_path in local_files(root)
                if rel_path not in remote
                or all(asset["status"] != "complete" for asset in remote[rel_path])
            }
            assert unsent <= {p["path"] for p in planned}, (unsent, planned)
        before = view.stats()["part_bytes_received"]
        result = run_sync(config)
        resumed_bytes += view.stats()["part_bytes_received"] - before
        assert result.returncode == 0, (index, result.failures(), result.stderr[-3000:])
        counted = result.mapping["uploaded"] + result.mapping["unchanged"]
        assert counted == len(local_files(root)), result.mapping

    assert_mirrored(root, view, 1001)
    assert resumed_bytes < pending_bytes, (resumed_bytes, pending_bytes)


def test_faults_token_expiry_and_expiring_urls_still_sync_everything(
    tmp_path: Path, ledger_url: str
) -> None:
    faults = ",".join(
        [
            "api:503@0.04",
            "api:429@0.03",
            "api:reset@0.03",
            "api:token_expired@0.02",
            "part:503@0.04",
            "part:429@0.03",
            "part:reset@0.03",
            "part:url_expired@0.05",
            "seed=11",
            "retry_after=1",
        ]
    )
    server = EmulatorServer(
        data_dir=tmp_path / "emulator", token_ttl=3, url_ttl=2, faults=faults
    )
    server.start()
    try:
        rng = random.Random(5)
        root = tmp_path / "media"
        for index in range(60):
            folder = root / f"set-{index % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"still_{index:03d}.jpg").write_bytes(
                rng.randbytes(rng.randrange(1, 60_000))
            )
        (root / "long take.mov").write_bytes(rng.randbytes(4 * 5 * MIB + 17))
        config = write_config(
            tmp_path,
            server.url,
            [{"local": "media", "folder_id": 1001}],
            ledger=ledger_url,
        )

        result = run_sync(config, timeout=300)

        assert result.returncode == 0, (result.failures(), result.stderr[-3000:])
        fired = httpx.get(f"{server.url}/_emulator/faults").json()
        httpx.delete(f"{server.url}/_emulator/faults").raise_for_status()
        assert_mirrored(root, RemoteView(server.url), 1001)
        counts = fired["fired"]
        assert sum(counts["api"].values()) >= 10, fired
        assert sum(counts["part"].values()) >= 5, fired
        assert (
            counts["api"].get("reset", 0) > 0
            and counts["part"].get("url_expired", 0) > 0
        )
    finally:
        server.stop()


def last_upload_outcome(config: Path, root: Path) -> str | None:
    ledger = ledger_of(config)
    try:
        mapping_id = ledger.find_mapping(str(root), 1001)
        assert mapping_id is not None
        last = ledger.last_pass(mapping_id, "upload")
        return None if last is None else last.outcome
    finally:
        ledger.close()


@pytest.fixture
def slow_parts(tmp_path: Path) -> Iterator[EmulatorServer]:
    """An emulator whose part uploads take a second each: time to stop a sync in the
    middle of a file."""
    server = EmulatorServer(
        data_dir=tmp_path / "emulator", faults="part:slow@1.0,slow=1"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def one_big_file(
    tmp_path: Path, url: str, name: str, parts: int, *, seed: int
) -> tuple[Path, Path]:
    """A mapping root holding one file of `parts` parts of 5 MiB, and its config."""
    root = tmp_path / "media"
    root.mkdir()
    (root / name).write_bytes(random.Random(seed).randbytes(parts * 5 * MIB))
    mapping = {"local": "media", "folder_id": 1001}
    return root, write_config(tmp_path, url, [mapping])


def sync_past_its_first_part(config: Path, view: RemoteView) -> subprocess.Popen[str]:
    """Start `sync --json` and return once the emulator has a part of it."""
    command = [*SYNCAGENT, "sync", "--config", str(config), "--json"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + 60
    while view.stats()["part_uploads"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    return process


def test_ctrl_c_stops_at_a_part_boundary_and_the_next_run_resumes(
    tmp_path: Path, slow_parts: EmulatorServer
) -> None:
    root, config = one_big_file(tmp_path, slow_parts.url, "long take.mov", 12, seed=3)
    view = RemoteView(slow_parts.url)
    process = sync_past_its_first_part(config, view)
    asked = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    stopped_after = time.monotonic() - asked

    assert process.returncode == 130
    assert stopped_after < 8  # the parts in flight, not the whole file
    [failure] = json.loads(out)["mappings"][0]["failures"]
    assert failure["rel_path"] == "long take.mov"
    assert "resumes from the parts sent" in failure["reason"]
    sent_first = view.stats()["part_bytes_received"]
    assert last_upload_outcome(config, root) == "interrupted"

    httpx.delete(f"{slow_parts.url}/_emulator/faults").raise_for_status()
    again = run_sync(config)

    assert again.returncode == 0
    assert again.mapping["uploaded"] == 1
    assert last_upload_outcome(config, root) == "ok"
    assert view.stats()["part_bytes_received"] - sent_first < 12 * 5 * MIB
    assert_mirrored(root, view, 1001)


def test_a_second_ctrl_c_quits_at_once_with_130_and_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    server = EmulatorServer(
        data_dir=tmp_path / "emulator", faults="part:slow@1.0,slow=3"
    )
    server.start()
    try:
        root = tmp_path / "media"
        root.mkdir()
        (root / "take.mov").write_bytes(random.Random(4).randbytes(4 * 5 * MIB))
        config = write_config(
            tmp_path, server.url, [{"local": "media", "folder_id": 1001}]
        )
        view = RemoteView(server.url)
        command = [*SYNCAGENT, "sync", "--config", str(config), "--json"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while view.stats()["part_uploads"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        asked = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)

        assert process.returncode == 130
        assert time.monotonic() - asked < 2  # not waiting for the slow parts
        assert "stopped at once by a second signal" in json.loads(out)["fatal"]
        assert "Aborted" not in err

        httpx.delete(f"{server.url}/_emulator/faults").raise_for_status()
        again = run_sync(config)

        assert again.returncode == 0, again.failures()
        assert again.mapping["uploaded"] == 1
        assert_mirrored(root, view, 1001)
    finally:
        server.stop()


def test_an_upload_whose_asset_was_deleted_meanwhile_goes_up_as_a_new_asset(
    tmp_path: Path, slow_parts: EmulatorServer
) -> None:
    # Someone removes the unfinished asset in Compass between two runs (410 then).
    root, config = one_big_file(tmp_path, slow_parts.url, "take.mov", 6, seed=5)
    view = RemoteView(slow_parts.url)
    process = sync_past_its_first_part(config, view)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    ledger = ledger_of(config)
    try:
        [mapping_id] = ledger.mappings()
        [upload] = ledger.uploads(mapping_id)
    finally:
        ledger.close()
    assert upload.asset_id is not None
    writer = CompassWriter(slow_parts.url)
    writer.remove(1001, [upload.asset_id])
    writer.close()
    httpx.delete(f"{slow_parts.url}/_emulator/faults").raise_for_status()

    again = run_sync(config)

    assert again.returncode == 0, again.failures()
    assert again.mapping["uploaded"] == 1
    [asset] = view.tree(1001)["take.mov"]
    assert asset["id"] != upload.asset_id
    assert_mirrored(root, view, 1001)


def test_a_full_disk_under_a_new_ledger_is_no_configuration_error(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    view = RemoteView(emulator.url)
    root = tmp_path / "media"
    root.mkdir()
    (root / "a.txt").write_text("a")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    ledger = config.parent / "state" / "ledger.db"

    full = run_sync(config, file_size_limit=0)

    # Exit 1, not 2: a service manager starts it again, and then it can work.
    assert full.returncode == 1, full.stderr
    assert "its disk failed" in full.summary["fatal"]
    assert not ledger.exists()  # no empty ledger to be taken for one of no schema
    assert view.tree(1001) == {}

    freed = run_sync(config)

    assert freed.returncode == 0, freed.stderr
    assert sorted(view.tree(1001)) == ["a.txt"]

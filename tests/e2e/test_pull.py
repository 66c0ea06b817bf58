"""Pulls and mirrors end to end: the agent against the emulator over real HTTP.

Assets, revisions, renames and removals are made with plain httpx calls
(`compass_writer.py`), as another Compass user would, never by the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from syncagent.commands.sync import sync_mappings
from syncagent.compass.retry import RetryPolicy
from syncagent.config import load_config
from syncagent.emulator import s3
from syncagent.emulator.db import Asset
from syncagent.emulator.proxies import ffmpeg_available, find_ffmpeg
from syncagent.emulator.server import EmulatorServer
from syncagent.engine import download
from syncagent.engine.download import source_key, temp_name
from syncagent.engine.progress import NoProgress
from syncagent.engine.pull_apply import PullApplier
from syncagent.engine.pull_report import PullReport
from syncagent.engine.report import PassReport
from syncagent.engine.safe_root import Dir
from syncagent.runtime import open_runtime, run_pull_pass, run_upload_pass
from tests.e2e.compass_writer import CompassWriter, md5
from tests.e2e.support import (
    SYNCAGENT,
    RemoteView,
    local_files,
    run_sync,
    write_config,
)
from tests.e2e.test_agent import ledger_of

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
ROOT = 1001


@pytest.fixture
def writer(emulator: EmulatorServer) -> Iterator[CompassWriter]:
    client = CompassWriter(emulator.url)
    try:
        yield client
    finally:
        client.close()


def mirror_config(
    tmp_path: Path,
    url: str,
    direction: str = "download",
    local: str = "mirror",
    *,
    ledger: str = "sqlite:///state/ledger.db",
    **mapping: object,
) -> Path:
    entry = {"local": local, "folder_id": ROOT, "direction": direction, **mapping}
    return write_config(tmp_path, url, [entry], ledger=ledger)


def sync_once(config: Path) -> list[PassReport]:
    """One `syncagent sync`, in this process: per mapping, pull then upload."""
    with open_runtime(load_config(config), "sync") as runtime:
        return sync_mappings(runtime, NoProgress(), dry_run=False)


def pulled(reports: list[PassReport]) -> PullReport:
    [report] = [r for r in reports if isinstance(r, PullReport)]
    return report


def uploaded(reports: list[PassReport]) -> PassReport:
    [report] = [r for r in reports if not isinstance(r, PullReport)]
    return report


def contents(root: Path) -> dict[str, bytes]:
    return {rel: path.read_bytes() for rel, path in local_files(root).items()}


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# -- a mirror follows Compass ----------------------------------------------------------


def test_a_mirror_follows_what_others_do_in_compass(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    ledger_url: str,
) -> None:
    clip = random_bytes(3 * MIB, seed=1)
    notes = writer.upload(ROOT, "notes.txt", b"first version\n")
    clip_id = writer.upload(ROOT, "clip.bin", clip)
    shoot = writer.make_folder("Shoot", ROOT)
    frame = writer.upload(shoot, "frame.txt", b"frame\n")
    config = mirror_config(tmp_path, emulator.url, ledger=ledger_url)
    mirror = tmp_path / "mirror"

    first = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert (first.mapping["kind"], first.mapping["downloaded"]) == ("pull", 3)
    assert first.mapping["folders_created"] == 1
    assert contents(mirror) == {
        "notes.txt": b"first version\n",
        "clip.bin": clip,
        "Shoot/frame.txt": b"frame\n",
    }

    # Someone revises, renames, removes, and makes a folder in Compass.
    writer.revise(notes, "notes.txt", b"second version, longer\n")
    writer.rename({clip_id: "clip (final cut).bin"})
    writer.remove(shoot, [frame])
    writer.make_folder("Empty for now", ROOT)
    writer.reset_stats()

    second = run_sync(config)

    done = second.mapping
    assert second.returncode == 0, second.stderr
    assert (done["updated"], done["renamed"], done["trashed"]) == (1, 1, 1)
    assert (done["downloaded"], done["folders_created"]) == (0, 1)
    assert contents(mirror) == {
        "notes.txt": b"second version, longer\n",
        "clip (final cut).bin": clip,
        ".syncagent-trash/Shoot/frame.txt": b"frame\n",
    }
    assert (mirror / "Empty for now").is_dir()
    # Only the revision travelled; the rename and the removal moved nothing.
    assert writer.stats()["download_bytes_sent"] == len(b"second version, longer\n")

    third = run_sync(config)

    assert third.returncode == 0
    assert third.mapping["unchanged"] == 2
    assert third.mapping["bytes_received"] == 0


# -- proxies ---------------------------------------------------------------------------


def png_bytes(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (20, 20, 220))
    image.paste((220, 20, 20), (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def video_bytes(tmp_path: Path) -> bytes:
    target = tmp_path / "made.mp4"
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    source = "testsrc=duration=1:size=320x240:rate=10"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    command += ["-i", source, "-pix_fmt", "yuv420p", "-c:v", "libx264", str(target)]
    subprocess.run(command, check=True, timeout=120)
    return target.read_bytes()


def test_proxies_arrive_under_the_layout_and_follow_renames(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    photo = png_bytes(1600, 1200)
    photo_id = writer.upload(ROOT, "photo.png", photo)
    with_video = ffmpeg_available()
    if with_video:
        writer.upload(ROOT, "clip.mp4", video_bytes(tmp_path))
    writer.wait_idle()
    wanted = ["large_thumbnail", "small_thumbnail", "video_sd"]
    mappings = [
        {
            "local": "mirror",
            "folder_id": ROOT,
            "direction": "download",
            "proxies": wanted,
        },
        {
            "local": "browse",
            "folder_id": ROOT,
            "direction": "download",
            "proxies": ["small_thumbnail"],
            "proxies_only": True,
        },
    ]
    config = write_config(tmp_path, emulator.url, mappings)
    mirror, browse = tmp_path / "mirror", tmp_path / "browse"

    reports = sync_once(config)

    assert all(r.ok for r in reports), [r.failures for r in reports]
    assert (mirror / "photo.png").read_bytes() == photo
    with Image.open(mirror / ".proxies/photo.png/large_thumbnail.jpg") as large:
        assert (large.format, large.size) == ("JPEG", (1000, 750))
    with Image.open(mirror / ".proxies/photo.png/small_thumbnail.jpg") as small:
        assert (small.format, small.size) == ("JPEG", (250, 188))
    assert not (mirror / ".proxies/photo.png/video_sd.mp4").exists()
    if with_video:
        rendition = (mirror / ".proxies/clip.mp4/video_sd.mp4").read_bytes()
        assert rendition[4:8] == b"ftyp"
        assert (mirror / ".proxies/clip.mp4/large_thumbnail.jpg").is_file()
    assert sorted(local_files(browse)) == sorted(
        [".proxies/photo.png/small_thumbnail.jpg"]
        + ([".proxies/clip.mp4/small_thumbnail.jpg"] if with_video else [])
    )

    writer.rename({photo_id: "harbour.png"})
    writer.reset_stats()

    second = sync_once(config)

    assert [r.proxies for r in second if isinstance(r, PullReport)] == [0, 0]
    assert writer.stats()["download_bytes_sent"] == 0
    assert (mirror / ".proxies/harbour.png/large_thumbnail.jpg").is_file()
    assert (browse / ".proxies/harbour.png/small_thumbnail.jpg").is_file()
    assert not (mirror / ".proxies/photo.png").exists()


def dry_sync(config: Path) -> list[PassReport]:
    """One `syncagent sync --dry-run`, in this process."""
    with open_runtime(load_config(config), "sync") as runtime:
        return sync_mappings(runtime, NoProgress(), dry_run=True)


def test_a_dry_run_lists_proxy_work_and_leaves_no_pass_behind(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    photo_id = writer.upload(ROOT, "photo.png", png_bytes(800, 600))
    writer.upload(ROOT, "notes.png", png_bytes(400, 300))
    writer.wait_idle()
    config = mirror_config(
        tmp_path, emulator.url, proxies=["small_thumbnail"], proxies_only=True
    )
    mirror = tmp_path / "mirror"

    [preview] = dry_sync(config)

    assert sorted(preview.planned) == [
        ("download proxy", ".proxies/notes.png/small_thumbnail.jpg"),
        ("download proxy", ".proxies/photo.png/small_thumbnail.jpg"),
    ]
    assert not mirror.exists() or local_files(mirror) == {}
    assert last_pull(config) is None  # nothing was pulled

    assert all(r.ok for r in sync_once(config))
    writer.rename({photo_id: "harbour.png"})
    before = last_pull(config)

    [preview] = dry_sync(config)

    assert preview.planned == [
        (
            "move proxy",
            ".proxies/photo.png/small_thumbnail.jpg -> "
            ".proxies/harbour.png/small_thumbnail.jpg",
        )
    ]
    assert (mirror / ".proxies/photo.png/small_thumbnail.jpg").is_file()
    assert last_pull(config) == before


def last_pull(config: Path) -> object:
    """When the last pull on the config's only mapping started, if one did."""
    ledger = ledger_of(config)
    try:
        [mapping_id] = ledger.mappings()
        last = ledger.last_pass(mapping_id, "pull")
        return None if last is None else last.started_at
    finally:
        ledger.close()


# -- interrupted and damaged downloads -------------------------------------------------


def test_an_interrupted_download_resumes_with_range(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = random_bytes(8 * MIB, seed=2)
    writer.upload(ROOT, "big.bin", data)
    config = mirror_config(tmp_path, emulator.url)
    # The connection drops after 3.5 MiB of the body: 3 whole 1 MiB reads survive.
    writer.set_faults("download:reset@#1,reset_after=3670016")
    writer.reset_stats()

    with caplog.at_level(logging.INFO, logger="syncagent.engine.download"):
        reports = sync_once(config)

    assert pulled(reports).downloaded == 1
    assert (tmp_path / "mirror/big.bin").read_bytes() == data
    resumed = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
    assert resumed[0].startswith("big.bin: ")  # the file, not the temp file
    assert resumed[0].endswith("resuming at byte 3145728")
    stats = writer.stats()
    assert stats["downloads"] == 2
    # The server produced 4 MiB before the drop; starting over would have cost those
    # plus 8 MiB. Resuming costs the 5 MiB that were missing.
    assert stats["download_bytes_sent"] == 9 * MIB


def test_a_download_left_half_done_resumes_on_the_next_pass(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    data = random_bytes(6 * MIB, seed=3)
    asset_id = writer.upload(ROOT, "big.bin", data)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    # What a process killed mid-download leaves behind.
    temp = mirror / temp_name(source_key(asset_id, md5(data)))
    temp.write_bytes(data[: 4 * MIB])
    config = mirror_config(tmp_path, emulator.url)
    writer.reset_stats()

    reports = sync_once(config)

    assert pulled(reports).downloaded == 1
    assert (mirror / "big.bin").read_bytes() == data
    assert writer.stats()["download_bytes_sent"] == 2 * MIB
    assert not temp.exists()


def test_a_partial_download_of_a_replaced_version_or_a_removed_asset_is_removed(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    old, new = b"first cut " * 50_000, b"second cut " * 50_000
    asset_id = writer.upload(ROOT, "cut.mov", old)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    # What an interrupted pull of the first cut left, and one of an asset removed
    # from the folder since (or never in it).
    superseded = mirror / temp_name(source_key(asset_id, md5(old)))
    superseded.write_bytes(old[:100_000])
    removed = writer.upload(ROOT, "dropped.mov", b"dropped take")
    gone = mirror / "sub" / temp_name(source_key(removed, md5(b"dropped take")))
    gone.parent.mkdir()
    gone.write_bytes(b"dropped")
    writer.remove(ROOT, [removed])
    writer.revise(asset_id, "cut.mov", new)

    report = pulled(sync_once(mirror_config(tmp_path, emulator.url)))

    assert (report.downloaded, report.failures) == (1, [])
    assert (mirror / "cut.mov").read_bytes() == new
    # Neither can ever be resumed: that version, and that asset, are gone.
    assert not superseded.exists()
    assert not gone.exists()


def test_a_temp_name_left_linked_to_a_placed_download_is_removed(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    data = random_bytes(150_000, seed=9)
    asset_id = writer.upload(ROOT, "take.mov", data)
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    sync_once(config)
    # Placing links the temp file to its name, then removes the temp name: a run
    # stopped between the two leaves both names on one file.
    temp = mirror / temp_name(source_key(asset_id, md5(data)))
    temp.hardlink_to(mirror / "take.mov")

    report = pulled(sync_once(config))

    assert report.ok and report.bytes_received == 0
    assert not temp.exists()
    assert (mirror / "take.mov").read_bytes() == data
    assert (mirror / "take.mov").stat().st_nlink == 1


def test_a_hard_link_planted_at_the_temp_name_is_never_written_through(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    data = b"hardlink temp attack"
    asset_id = writer.upload(ROOT, "attack.txt", data)
    outside, mirror = tmp_path / "outside", tmp_path / "mirror"
    outside.mkdir()
    mirror.mkdir()
    (outside / "victim.txt").write_bytes(b"V" * 200)
    (outside / "short.txt").write_bytes(b"V" * 5)  # shorter: would be "resumed"
    for victim in ("victim.txt", "short.txt"):
        temp = mirror / temp_name(source_key(asset_id, md5(data)))
        temp.hardlink_to(outside / victim)
        config = mirror_config(tmp_path, emulator.url)

        report = pulled(sync_once(config))

        assert report.ok and report.downloaded + report.restored == 1
        assert (mirror / "attack.txt").read_bytes() == data
        assert (mirror / "attack.txt").stat().st_nlink == 1
        assert not temp.exists()
        (mirror / "attack.txt").unlink()
    assert (outside / "victim.txt").read_bytes() == b"V" * 200
    assert (outside / "short.txt").read_bytes() == b"V" * 5


def test_a_download_that_fails_its_checksum_is_never_placed(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    data = random_bytes(200_000, seed=4)
    writer.upload(ROOT, "doc.pdf", data)
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    writer.set_faults("download:corrupt@#1+")

    damaged = pulled(sync_once(config))

    assert [f.rel_path for f in damaged.failures] == ["doc.pdf"]
    assert "MD5" in damaged.failures[0].reason
    assert sorted(os.listdir(mirror)) == []

    writer.clear_faults()
    healed = pulled(sync_once(config))

    assert healed.ok and healed.downloaded == 1
    assert contents(mirror) == {"doc.pdf": data}


def slow_downloads(monkeypatch: pytest.MonkeyPatch, seconds_per_chunk: float) -> None:
    """Make the in-process emulator send each 1 MiB of a download body slowly."""
    original = s3._file_chunks

    async def slowly(*args: Any) -> AsyncIterator[bytes]:
        async for chunk in original(*args):
            yield chunk
            await asyncio.sleep(seconds_per_chunk)

    monkeypatch.setattr(s3, "_file_chunks", slowly)


def test_ctrl_c_stops_downloads_at_a_chunk_and_the_next_run_resumes_them(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {f"take {n}.mov": random_bytes(8 * MIB, seed=10 + n) for n in (1, 2)}
    for name, data in files.items():
        writer.upload(ROOT, name, data)
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    slow_downloads(monkeypatch, 0.2)
    writer.reset_stats()
    command = [*SYNCAGENT, "sync", "--config", str(config), "--json"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + 60
    while writer.stats()["download_bytes_sent"] < MIB and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)

    assert process.returncode == 130
    failures = json.loads(out)["mappings"][0]["failures"]
    assert sorted(f["rel_path"] for f in failures) == sorted(files)
    assert all("resumes at byte" in f["reason"] for f in failures)
    # The downloads stopped between chunks, far from their end, and were kept.
    sent_first = writer.stats()["download_bytes_sent"]
    assert sent_first < 12 * MIB
    kept = sum(p.stat().st_size for p in mirror.glob(".syncagent-dl-*.part"))
    assert 0 < kept <= sent_first
    assert not any((mirror / name).exists() for name in files)

    monkeypatch.undo()
    writer.reset_stats()
    again = run_sync(config)

    assert again.returncode == 0, again.stderr
    assert contents(mirror) == files
    assert writer.stats()["download_bytes_sent"] == 16 * MIB - kept


def test_compass_gone_mid_pull_stops_the_pull_with_one_message(
    tmp_path: Path,
) -> None:
    server = EmulatorServer(data_dir=tmp_path / "emulator")
    server.start()
    port = int(server.url.rsplit(":", 1)[1])
    writer = CompassWriter(server.url)
    files = {f"still {n:02}.jpg": bytes([n]) * 3000 for n in range(40)}
    writer.upload_many(ROOT, list(files.items()))
    writer.close()
    config = mirror_config(tmp_path, server.url)
    stopped = threading.Event()

    class StopServerAfterThree(NoProgress):
        done = 0

        def file_done(self, rel_path: str, outcome: str) -> None:
            self.done += 1
            if self.done == 3 and not stopped.is_set():
                stopped.set()
                server.stop()

    with open_runtime(load_config(config), "sync") as runtime:
        # Give up on a dead server within moments, not the default budget.
        runtime.client.session.policy = RetryPolicy(
            max_attempts=3, base_delay=0.05, max_delay=0.1, deadline=5
        )
        [mapping] = runtime.config.mappings
        report = run_pull_pass(runtime, mapping, StopServerAfterThree())

    assert stopped.is_set()
    assert report.fatal is not None
    assert report.fatal.startswith("Compass cannot be reached; the pass stopped")
    assert len(report.failures) <= 4  # the transfers already under way, at most
    assert report.downloaded < 10

    again = EmulatorServer(data_dir=tmp_path / "emulator", port=port)
    again.start()
    try:
        healed = pulled(sync_once(config))
    finally:
        again.stop()
    assert healed.ok, healed.failures
    assert contents(tmp_path / "mirror") == files


# -- untrusted names and links ---------------------------------------------------------


def test_hostile_remote_names_land_safely_inside_the_root(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    hostile = ["../../escape.txt", "a/b.txt", "CON.txt", "x\0y"]
    ids = writer.upload_many(
        ROOT, [(f"plain{i}.txt", f"{i}".encode()) for i in range(len(hostile))]
    )
    # The emulator refuses such names; a less careful server might not.
    with emulator.context.sessions.begin() as session:
        for asset_id, name in zip(ids, hostile, strict=True):
            asset = session.get(Asset, asset_id)
            assert asset is not None
            asset.name = name
    upper = writer.upload(ROOT, "Photo.JPG", b"upper")
    lower = writer.upload(ROOT, "photo.jpg", b"lower")
    root = tmp_path / "deep" / "er" / "mirror"
    config = mirror_config(tmp_path, emulator.url, local="deep/er/mirror")

    report = pulled(sync_once(config))

    assert report.ok, report.failures
    assert contents(root) == {
        "escape.txt": b"0",
        "a_b.txt": b"1",
        "CON_.txt": b"2",
        "x_y": b"3",
        "Photo.JPG": b"upper",
        f"photo (asset {lower}).jpg": b"lower",
    }
    assert upper < lower
    outside = [
        p
        for p in local_files(tmp_path)
        if not p.startswith(("deep/er/mirror/", "emulator/", "state/"))
    ]
    assert outside == ["agent.toml"]


def test_nothing_is_written_through_a_symbolic_link(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shoot = writer.make_folder("Shoot", ROOT)
    writer.upload(shoot, "a.txt", b"a")
    b_id = writer.upload(ROOT, "b.txt", b"b")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "Shoot").symlink_to(outside, target_is_directory=True)
    (mirror / "b.txt").symlink_to(outside / "b.txt")
    config = mirror_config(tmp_path, emulator.url)

    first = pulled(sync_once(config))

    assert first.ok, first.failures
    assert list(outside.iterdir()) == []
    assert contents(mirror) == {
        f"Shoot (folder {shoot})/a.txt": b"a",
        f"b (asset {b_id}).txt": b"b",
    }

    # A synced folder replaced by a link to elsewhere: new files must not follow it.
    synced_dir = mirror / f"Shoot (folder {shoot})"
    (synced_dir / "a.txt").unlink()
    synced_dir.rmdir()
    synced_dir.symlink_to(outside, target_is_directory=True)
    writer.upload(shoot, "c.txt", b"c")

    second = pulled(sync_once(config))

    assert [f.rel_path for f in second.failures] == [synced_dir.name]
    assert "symbolic link" in second.failures[0].reason
    assert list(outside.iterdir()) == []


def test_a_chain_of_renames_in_compass_leaves_plain_names(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    old = writer.upload(ROOT, "final.mov", b"old final")
    new = writer.upload(ROOT, "final_v2.mov", b"new final")
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    sync_once(config)

    # The everyday "replace the master": the old one steps aside, the new one takes
    # its name.
    writer.rename({old: "final_old.mov"})
    writer.rename({new: "final.mov"})
    report = pulled(sync_once(config))

    assert report.ok and report.renamed == 2
    assert contents(mirror) == {
        "final_old.mov": b"old final",
        "final.mov": b"new final",
    }


def test_a_mirror_takes_every_asset_but_what_its_own_globs_leave_out(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    litter = [".hidden.txt", "Thumbs.db", "budget.TMP", "~$deck.pptx", "index.lock"]
    litter += ["log.error.txt", "x.part", "clip.download"]
    names = [*litter, "plain.txt", "scan.raw"]
    writer.upload_many(ROOT, [(name, name.encode()) for name in names])
    common = {"folder_id": ROOT, "exclude": ["*.raw"]}
    mappings = [
        {"local": "mirror", "direction": "download", **common},
        {"local": "both", "direction": "both", **common},
    ]
    config = write_config(tmp_path, emulator.url, mappings)

    reports = sync_once(config)

    assert all(r.ok for r in reports), [r.failures for r in reports]
    wanted = {name: name.encode() for name in names if name != "scan.raw"}
    assert contents(tmp_path / "mirror") == wanted
    # Two-way: the filters apply both ways, so what is never uploaded never comes
    # down either.
    assert contents(tmp_path / "both") == {"plain.txt": b"plain.txt"}


def forget_the_ledger(config: Path) -> None:
    for path in (config.parent / "state").glob("ledger.db*"):
        path.unlink()


def test_a_lost_ledger_duplicates_nothing_the_mirror_named_for_a_collision(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    upper = writer.upload(ROOT, "Photo.JPG", b"big photo")
    lower = writer.upload(ROOT, "photo.jpg", b"small photo")
    writer.upload(ROOT, "what?.txt", b"question")
    thing_folder = writer.make_folder("thing", ROOT)
    writer.upload(thing_folder, "in.txt", b"inside")
    thing = writer.upload(ROOT, "thing", b"a file called thing")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    sync_once(config)
    before = contents(mirror)
    assert before == {
        "Photo.JPG": b"big photo",
        f"photo (asset {lower}).jpg": b"small photo",
        "what_.txt": b"question",
        "thing/in.txt": b"inside",
        f"thing (asset {thing})": b"a file called thing",
    }
    assert upper < lower

    forget_the_ledger(config)
    reports = sync_once(config)

    pull, upload = pulled(reports), uploaded(reports)
    assert (pull.downloaded, pull.folders_created) == (0, 0)
    assert pull.adopted == len(before)  # recognised, and said so
    assert (upload.uploaded, upload.adopted) == (0, 0)
    assert contents(mirror) == before
    view = RemoteView(emulator.url)
    try:
        remote = view.tree(ROOT)
    finally:
        view.close()
    assert sorted((p, len(a)) for p, a in remote.items()) == [
        ("Photo.JPG", 1),
        ("photo.jpg", 1),
        ("thing", 1),
        ("thing/in.txt", 1),
        ("what?.txt", 1),
    ]


def test_a_seeded_file_named_in_decomposed_unicode_is_recognised(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    composed = "caf\u00e9.txt"
    decomposed = "cafe\u0301.txt"
    writer.upload(ROOT, composed, b"cafe")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / decomposed).write_bytes(b"cafe")
    config = mirror_config(tmp_path, emulator.url, direction="both")

    reports = sync_once(config)

    assert (pulled(reports).downloaded, uploaded(reports).uploaded) == (0, 0)
    assert pulled(reports).adopted == 1
    assert os.listdir(mirror) == [decomposed]
    assert writer.stats()["downloads"] == 0
    again = sync_once(config)
    assert (pulled(again).unchanged, uploaded(again).unchanged) == (1, 1)


def status_of(config: Path) -> tuple[int, dict[str, object]]:
    """`syncagent status --json`: its exit code and its first mapping."""
    command = [sys.executable, "-m", "syncagent", "status", "--json"]
    done = subprocess.run(
        [*command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)["mappings"][0]


def test_one_blocked_folder_fails_alone_and_the_rest_of_the_pull_goes_on(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    normal = writer.upload(ROOT, "normal.txt", b"v1\n")
    new_sub = writer.make_folder("NewSub", ROOT)
    writer.upload(new_sub, "ns.txt", b"ns\n")
    other = writer.make_folder("Other", ROOT)
    writer.upload(other, "o.txt", b"o\n")
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    assert pulled(sync_once(config)).ok

    # One folder becomes a file, another a link; Compass changes everywhere.
    (mirror / "NewSub").rename(tmp_path / "newsub-away")
    (mirror / "NewSub").write_bytes(b"i am a file\n")
    (mirror / "Other").rename(tmp_path / "other-away")
    (mirror / "Other").symlink_to(outside, target_is_directory=True)
    writer.revise(normal, "normal.txt", b"v2, longer\n")
    writer.upload(ROOT, "new.txt", b"new\n")
    writer.upload(new_sub, "ns2.txt", b"ns2\n")
    writer.upload(other, "o2.txt", b"o2\n")

    blocked = pulled(sync_once(config))

    assert (mirror / "normal.txt").read_bytes() == b"v2, longer\n"
    assert (mirror / "new.txt").read_bytes() == b"new\n"
    assert (blocked.updated, blocked.downloaded) == (1, 1)
    failures = {f.rel_path: f.reason for f in blocked.failures}
    assert failures == {
        "NewSub": "NewSub is a symbolic link or a file, not a folder; nothing was "
        "written there",
        "Other": "Other is a symbolic link or a file, not a folder; nothing was "
        "written there",
    }
    assert (mirror / "NewSub").read_bytes() == b"i am a file\n"
    assert list(outside.iterdir()) == []
    code, mapping = status_of(config)
    assert (code, mapping["failed"]) == (1, 2)

    # Once the folders are back, the next pull fills them and status is clear.
    (mirror / "NewSub").unlink()
    (tmp_path / "newsub-away").rename(mirror / "NewSub")
    (mirror / "Other").unlink()
    (tmp_path / "other-away").rename(mirror / "Other")

    fixed = pulled(sync_once(config))

    assert fixed.ok, fixed.failures
    assert (mirror / "NewSub" / "ns2.txt").read_bytes() == b"ns2\n"
    assert (mirror / "Other" / "o2.txt").read_bytes() == b"o2\n"
    code, mapping = status_of(config)
    assert (code, mapping["failed"], mapping["failures"]) == (0, 0, [])


def test_status_forgets_a_pull_failure_once_a_later_pull_gets_past_it(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    report = writer.upload(ROOT, "report.txt", b"r\n")
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    assert pulled(sync_once(config)).ok
    (mirror / ".syncagent-trash").symlink_to(outside, target_is_directory=True)
    writer.remove(ROOT, [report])

    refused = pulled(sync_once(config))

    assert [f.rel_path for f in refused.failures] == ["report.txt"]
    assert (mirror / "report.txt").exists() and list(outside.iterdir()) == []
    assert status_of(config)[0] == 1

    (mirror / ".syncagent-trash").unlink()
    trashed = pulled(sync_once(config))

    assert (trashed.ok, trashed.trashed) == (True, 1)
    assert (mirror / ".syncagent-trash" / "report.txt").read_bytes() == b"r\n"
    code, mapping = status_of(config)
    assert (code, mapping["failed"], mapping["failures"]) == (0, 0, [])


def test_a_link_in_place_of_a_file_and_a_kept_change_are_said_plainly(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"precious")
    writer.upload(ROOT, "CON.txt", b"c")
    gone = writer.upload(ROOT, "x.txt", b"x")
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    assert pulled(sync_once(config)).ok
    (mirror / "CON_.txt").unlink()
    (mirror / "CON_.txt").symlink_to(outside / "victim.txt")
    (mirror / "x.txt").write_bytes(b"changed here")
    writer.remove(ROOT, [gone])

    with caplog.at_level(logging.INFO, logger="syncagent.engine"):
        report = pulled(sync_once(config))

    assert {f.rel_path: f.reason for f in report.failures} == {
        "CON_.txt": "CON_.txt is a symbolic link or not a regular file; nothing was "
        "written there"
    }
    assert (outside / "victim.txt").read_bytes() == b"precious"
    messages = [r.getMessage() for r in caplog.records]
    assert "x.txt: removed in Compass but changed here; kept" in messages
    assert (mirror / "x.txt").read_bytes() == b"changed here"


# -- two-way ---------------------------------------------------------------------------


def test_two_way_conflict_keeps_both_versions(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    ledger_url: str,
) -> None:
    doc = writer.upload(ROOT, "doc.txt", b"base\n")
    config = mirror_config(tmp_path, emulator.url, direction="both", ledger=ledger_url)
    mirror = tmp_path / "mirror"
    first = run_sync(config)
    assert first.returncode == 0, first.stderr
    assert (mirror / "doc.txt").read_bytes() == b"base\n"

    (mirror / "doc.txt").write_bytes(b"edited here\n")
    writer.revise(doc, "doc.txt", b"edited in Compass\n")

    second = run_sync(config)

    pull, upload = second.summary["mappings"]
    assert second.returncode == 0, second.stderr
    assert (pull["kind"], pull["conflicts"], upload["revised"]) == ("pull", 1, 1)
    assert (mirror / "doc.txt").read_bytes() == b"edited here\n"
    [copy] = [p for p in mirror.iterdir() if p.name != "doc.txt"]
    assert re.fullmatch(
        rf"doc \(conflict \d{{4}}-\d\d-\d\d asset {doc}\)\.txt", copy.name
    )
    assert copy.read_bytes() == b"edited in Compass\n"
    assert [n["rel_path"] for n in pull["notices"]] == ["doc.txt"]
    assert writer.asset(doc)["checksum"] == md5(b"edited here\n")

    third = run_sync(config)

    pull, upload = third.summary["mappings"]
    assert (pull["conflicts"], pull["updated"], upload["revised"]) == (0, 0, 0)
    assert (upload["uploaded"], pull["downloaded"]) == (0, 0)


def test_two_way_never_echoes_over_three_passes(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    ledger_url: str,
) -> None:
    writer.upload(ROOT, "from compass.txt", b"remote\n")
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "from disk.txt").write_bytes(b"local\n")
    (mirror / "sub" / "deep.txt").write_bytes(b"deep\n")
    config = mirror_config(tmp_path, emulator.url, direction="both", ledger=ledger_url)

    first = sync_once(config)

    assert (pulled(first).downloaded, uploaded(first).uploaded) == (1, 2)
    after_first = writer.stats()
    for _ in range(2):
        again = sync_once(config)
        pull, upload = pulled(again), uploaded(again)
        assert (pull.downloaded, pull.updated, pull.renamed, pull.trashed) == (0,) * 4
        assert (upload.uploaded, upload.revised, upload.renamed) == (0, 0, 0)
        assert (pull.unchanged, upload.unchanged) == (3, 3)
    later = writer.stats()
    assert later["part_uploads"] == after_first["part_uploads"]
    assert later["downloads"] == after_first["downloads"]
    view = RemoteView(emulator.url)
    try:
        remote = view.tree(ROOT)
    finally:
        view.close()
    assert sorted((p, len(a)) for p, a in remote.items()) == [
        ("from compass.txt", 1),
        ("from disk.txt", 1),
        ("sub/deep.txt", 1),
    ]


def test_two_way_keeps_a_local_delete_until_compass_changes_the_file(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    asset_id = writer.upload(ROOT, "old.txt", b"old\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    sync_once(config)
    (mirror / "old.txt").unlink()

    deleted = sync_once(config)
    again = sync_once(config)

    assert pulled(deleted).withheld == 1
    assert not (mirror / "old.txt").exists()
    assert (pulled(again).downloaded, pulled(again).withheld) == (0, 0)
    assert writer.asset(asset_id)["status"] == "complete"  # still in Compass

    writer.revise(asset_id, "old.txt", b"new in Compass\n")
    returned = sync_once(config)

    assert pulled(returned).downloaded == 1
    assert (mirror / "old.txt").read_bytes() == b"new in Compass\n"


def test_two_way_local_delete_seen_first_by_an_upload_pass_stays_deleted(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    """The agent may run an upload pass (on a watch event) before the next pull."""
    writer.upload(ROOT, "gone.txt", b"delete me\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    sync_once(config)
    (mirror / "gone.txt").unlink()

    with open_runtime(load_config(config), "sync") as runtime:
        [mapping] = runtime.config.mappings
        upload = run_upload_pass(runtime, mapping, NoProgress())
        pull = run_pull_pass(runtime, mapping, NoProgress())

    assert upload.forgotten == 1
    assert pull.downloaded == 0
    assert not (mirror / "gone.txt").exists()


def test_two_way_conflict_seen_first_by_an_upload_pass_is_left_to_the_pull(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    """The agent may run an upload pass (on a watch event) before the next pull."""
    doc = writer.upload(ROOT, "doc.txt", b"base\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    sync_once(config)
    (mirror / "doc.txt").write_bytes(b"edited here, longer\n")
    writer.revise(doc, "doc.txt", b"edited in Compass\n")

    with open_runtime(load_config(config), "sync") as runtime:
        [mapping] = runtime.config.mappings
        upload = run_upload_pass(runtime, mapping, NoProgress())
        assert writer.asset(doc)["checksum"] == md5(b"edited in Compass\n")
        pull = run_pull_pass(runtime, mapping, NoProgress())
        after = run_upload_pass(runtime, mapping, NoProgress())

    assert upload.revised == 0
    assert "changed in Compass too" in upload.failures[0].reason
    assert pull.conflicts == 1
    assert after.revised == 1
    assert writer.asset(doc)["checksum"] == md5(b"edited here, longer\n")
    copies = [p.read_bytes() for p in mirror.iterdir() if p.name != "doc.txt"]
    assert copies == [b"edited in Compass\n"]


def test_two_way_revision_of_a_file_with_a_made_safe_name_keeps_the_compass_name(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    asset_id = writer.upload(ROOT, "what?.txt", b"question\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    sync_once(config)
    [local] = [p for p in mirror.iterdir() if p.is_file()]
    assert local.name == "what_.txt"  # made safe for every platform's disk
    local.write_bytes(b"answered here\n")

    reports = sync_once(config)

    assert uploaded(reports).revised == 1
    asset = writer.asset(asset_id)
    assert asset["name"] == "what?.txt"
    assert asset["checksum"] == md5(b"answered here\n")


# -- scale -----------------------------------------------------------------------------


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[str]:
    """An emulator in its own process, so the test's uploads and the agent get a core
    of their own."""
    port = _free_port()
    command = [sys.executable, "-m", "syncagent", "emulator", "--port", str(port)]
    command += ["--data", str(tmp_path / "emulator")]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/_emulator/stats", timeout=1)
            return
        except httpx.TransportError:
            assert process.poll() is None, "the emulator exited"
            time.sleep(0.1)
    raise AssertionError("the emulator did not start")


@pytest.mark.slow
def test_a_second_pull_of_2000_assets_moves_only_what_changed(
    emulator_process: str, tmp_path: Path
) -> None:
    writer = CompassWriter(emulator_process)
    files = [
        (f"file {i:04}.txt", f"asset {i}\n".encode() * (1 + i % 5)) for i in range(2000)
    ]
    ids = writer.upload_many(ROOT, files)
    config = mirror_config(tmp_path, emulator_process)
    mirror = tmp_path / "mirror"

    first = pulled(sync_once(config))

    assert (first.downloaded, first.failures) == (2000, [])
    assert len(local_files(mirror)) == 2000

    # 1,000 change (100 revised, 450 renamed, 450 removed) and 100 are new.
    revised = {a: f"revised {a}\n".encode() * 3 for a in ids[:100]}
    writer.revise_many(
        [(a, files[i][0], data) for i, (a, data) in enumerate(revised.items())]
    )
    writer.rename({a: f"renamed {a}.txt" for a in ids[100:550]})
    writer.remove(ROOT, ids[550:1000])
    new = [(f"new {i:03}.txt", f"new {i}\n".encode()) for i in range(100)]
    writer.upload_many(ROOT, new)
    writer.reset_stats()

    second = pulled(sync_once(config))

    assert second.failures == []
    assert (second.updated, second.renamed, second.trashed) == (100, 450, 450)
    assert (second.downloaded, second.unchanged) == (100, 1000)
    stats = writer.stats()
    changed_bytes = sum(map(len, revised.values())) + sum(len(d) for _, d in new)
    assert stats["download_bytes_sent"] == changed_bytes == second.bytes_received
    assert stats["downloads"] == 200
    on_disk = local_files(mirror)
    assert len([p for p in on_disk if not p.startswith(".syncagent-trash/")]) == 1650
    writer.close()


def test_two_way_file_renamed_on_both_sides_stays_one_asset_with_the_local_name(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    doc = writer.upload(ROOT, "draft.txt", b"base\n")
    notes = writer.upload(ROOT, "notes.txt", b"notes\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    assert run_sync(config).returncode == 0
    writer.rename({doc: "final in compass.txt"})
    (mirror / "draft.txt").rename(mirror / "final here.txt")
    (mirror / "notes.txt").rename(mirror / "notes v2.txt")  # here only

    result = run_sync(config)

    pull, upload = result.summary["mappings"]
    assert result.returncode == 0, result.stderr
    assert (upload["renamed"], upload["uploaded"], pull["withheld"]) == (2, 0, 0)
    assert [n["rel_path"] for n in pull["notices"]] == ["final here.txt"]
    assert "the name given here wins" in pull["notices"][0]["reason"]
    assert sorted(p.name for p in mirror.iterdir()) == [
        "final here.txt",
        "notes v2.txt",
    ]
    view = RemoteView(emulator.url)
    try:
        assets = [(a["id"], a["name"]) for a in view.folder_assets(ROOT)]
    finally:
        view.close()
    assert sorted(assets) == [(doc, "final here.txt"), (notes, "notes v2.txt")]

    again = run_sync(config)

    pull, upload = again.summary["mappings"]
    assert (pull["downloaded"], pull["notices"], upload["renamed"]) == (0, [], 0)


def test_a_disk_that_fills_up_keeps_the_partial_and_the_next_pull_resumes_it(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = b"FULL" + random_bytes(3 * MIB, 5)
    writer.upload(ROOT, "big.mov", big)
    writer.upload(ROOT, "small.txt", b"fits\n")
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    add = download._Transfer.add
    filling: set[int] = set()

    def disk_fills_after_a_chunk_of_big(self: Any, chunk: bytes) -> None:
        if self.offset == 0 and chunk.startswith(b"FULL"):
            filling.add(id(self))
        elif id(self) in filling:
            raise OSError(28, "No space left on device")
        add(self, chunk)

    monkeypatch.setattr(download._Transfer, "add", disk_fills_after_a_chunk_of_big)
    report = pulled(sync_once(config))

    assert report.downloaded == 1
    assert [(f.rel_path, f.reason) for f in report.failures] == [
        (
            "big.mov",
            "the disk filled up (No space left on device); the 1.0 MB downloaded so "
            "far are kept and the download resumes from there once space is freed",
        )
    ]
    assert report.bytes_received == MIB + len(b"fits\n")
    [partial] = [p for p in mirror.iterdir() if p.name.endswith(".part")]
    assert partial.read_bytes() == big[:MIB]

    monkeypatch.setattr(download._Transfer, "add", add)
    writer.reset_stats()
    again = pulled(sync_once(config))

    assert (again.downloaded, again.failures) == (1, [])
    assert again.bytes_received == len(big) - MIB
    assert writer.stats()["download_bytes_sent"] == len(big) - MIB
    assert contents(mirror) == {"big.mov": big, "small.txt": b"fits\n"}


class SmallDisk:
    """A disk of `size` bytes under the mirror, for a pull that runs in this process:
    its free space is what the mirror's files leave, and a write past it fails."""

    def __init__(self, mirror: Path, size: int, monkeypatch: pytest.MonkeyPatch):
        self.mirror = mirror
        self.size = size
        add = download._Transfer.add
        lock = threading.Lock()

        def write_within(transfer: Any, chunk: bytes) -> None:
            with lock:
                if len(chunk) > self.free(0):
                    raise OSError(28, "No space left on device")
                add(transfer, chunk)

        monkeypatch.setattr(download, "free_bytes", self.free)
        monkeypatch.setattr(download._Transfer, "add", write_within)

    def free(self, dir_fd: int) -> int:
        del dir_fd
        used = 0
        for path in self.mirror.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                used += path.stat().st_size if path.is_file() else 0
        return self.size - used


def test_a_pull_that_does_not_fit_the_disk_sends_nothing_until_space_is_freed(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clips = {f"clip {n}.mov": random_bytes(3 * MIB, seed=20 + n) for n in (1, 2)}
    for name, data in clips.items():
        writer.upload(ROOT, name, data)
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    disk = SmallDisk(mirror, 5 * MIB, monkeypatch)

    # Each fits alone, not both: the one that claims the space second waits.
    first = pulled(sync_once(config))

    assert first.downloaded == 1
    [refused] = first.failures
    assert re.fullmatch(
        rf"needs 3\.1 MB, 1\.0 MB free on the disk of {re.escape(str(mirror))}"
        r"( after 3\.1 MB for downloads in progress)?; not downloaded until space "
        r"is freed",
        refused.reason,
    ), refused.reason
    stats = writer.stats()
    assert stats["download_bytes_sent"] == 3 * MIB == first.bytes_received

    writer.reset_stats()
    second = pulled(sync_once(config))

    assert [f.rel_path for f in second.failures] == [refused.rel_path]
    assert writer.stats()["download_bytes_sent"] == 0

    disk.size += 3 * MIB
    third = pulled(sync_once(config))

    assert (third.downloaded, third.failures) == (1, [])
    assert contents(mirror) == {name: data for name, data in clips.items()}


def test_two_way_folder_that_cannot_be_listed_is_left_as_it_is(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    shoot = writer.make_folder("shoot", ROOT)
    writer.upload(shoot, "take.txt", b"take 1\n")
    writer.upload(ROOT, "top.txt", b"top\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    assert run_sync(config).returncode == 0

    (mirror / "shoot").chmod(0)
    try:
        locked = run_sync(config, unprivileged=True)
    finally:
        (mirror / "shoot").chmod(0o755)

    pull, upload = locked.summary["mappings"]
    assert {n["rel_path"]: n["reason"] for n in pull["notices"]} == {
        "shoot": "cannot be listed here; left as it is until it can"
    }
    assert (pull["withheld"], upload["removed"], upload["forgotten"]) == (0, 0, 0)

    again = run_sync(config)

    pull, upload = again.summary["mappings"]
    assert again.returncode == 0, again.stderr
    assert (pull["downloaded"], pull["notices"], upload["uploaded"]) == (0, [], 0)
    assert contents(mirror) == {"shoot/take.txt": b"take 1\n", "top.txt": b"top\n"}


def test_a_long_name_that_fits_the_disk_is_kept_and_a_lost_ledger_duplicates_nothing(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    name = "Interview with the harbour master about the night shift, " * 4 + "A.mov"
    assert 200 < len(name.encode()) <= 255
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / name).write_bytes(b"camera A\n")
    assert run_sync(config).returncode == 0
    for ledger in (tmp_path / "state").glob("ledger.db*"):
        ledger.unlink()

    again = run_sync(config)

    pull, upload = again.summary["mappings"]
    assert again.returncode == 0, again.stderr
    assert (pull["downloaded"], upload["uploaded"]) == (0, 0)
    assert sorted(contents(mirror)) == [name]
    view = RemoteView(emulator.url)
    try:
        assert [a["name"] for a in view.folder_assets(ROOT)] == [name]
    finally:
        view.close()


# -- a stop between placing a download and recording it -----------------------------


@pytest.mark.parametrize("direction", ["download", "both"])
def test_a_download_placed_but_not_recorded_is_known_to_the_next_pass(
    tmp_path: Path, emulator: EmulatorServer, writer: CompassWriter, direction: str
) -> None:
    data = random_bytes(200_000, seed=7)
    asset_id = writer.upload(ROOT, "clip.bin", data)
    config = mirror_config(tmp_path, emulator.url, direction)
    sync_once(config)
    mirror = tmp_path / "mirror"
    assert contents(mirror) == {"clip.bin": data}

    # The run stopped right after renaming the download into place: the ledger
    # holds the note taken before the rename, and no entry.
    ledger = ledger_of(config)
    mapping_id = ledger.find_mapping(str(mirror), ROOT)
    assert mapping_id is not None
    entry = ledger.entry(mapping_id, "clip.bin")
    assert entry is not None
    ledger.remove_entries(mapping_id, ["clip.bin"])
    ledger.intend_placement(mapping_id, entry)
    ledger.close()
    # Meanwhile the asset is renamed in Compass.
    writer.rename({asset_id: "clip-final.bin"})

    reports = sync_once(config)

    # The file follows the rename: no second download, no stray copy, and a
    # two-way mapping sends nothing back.
    assert contents(mirror) == {"clip-final.bin": data}
    assert pulled(reports).bytes_received == 0
    if direction == "both":
        assert (uploaded(reports).uploaded, uploaded(reports).bytes_sent) == (0, 0)
    remote = RemoteView(emulator.url).tree(ROOT)
    assert {path: len(assets) for path, assets in remote.items()} == {
        "clip-final.bin": 1
    }


def test_a_bug_met_by_one_download_leaves_the_others_done(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        writer.upload(ROOT, name, name.encode())
    config = mirror_config(tmp_path, emulator.url)
    fetch = PullApplier.fetch

    def buggy(self: PullApplier, op: Any) -> None:
        if op.rel_path == "b.txt":
            raise KeyError("a bug")
        fetch(self, op)

    monkeypatch.setattr(PullApplier, "fetch", buggy)

    report = pulled(sync_once(config))

    assert report.downloaded == 2
    assert contents(tmp_path / "mirror") == {"a.txt": b"a.txt", "c.txt": b"c.txt"}
    assert [(f.rel_path, f.reason) for f in report.failures] == [
        ("b.txt", "unexpected error: KeyError('a bug')")
    ]
    assert "Traceback" in caplog.text

    monkeypatch.setattr(PullApplier, "fetch", fetch)
    again = pulled(sync_once(config))

    assert (again.downloaded, again.failures) == (1, [])


def two_way_of(
    writer: CompassWriter, tmp_path: Path, url: str, name: str
) -> tuple[int, Path, Path]:
    """An asset `name` holding one line, synced down by a two-way mapping: its
    ID, the mapping's configuration and its local folder."""
    doc = writer.upload(ROOT, name, b"base\n")
    config = mirror_config(tmp_path, url, direction="both")
    assert all(r.ok for r in sync_once(config))
    return doc, config, tmp_path / "mirror"


def upload_pull_upload(config: Path) -> tuple[PassReport, PullReport, PassReport]:
    """An upload pass, a pull, an upload pass: the order `syncagent run` may take
    when a save here comes before the next pull."""
    with open_runtime(load_config(config), "sync") as runtime:
        [mapping] = runtime.config.mappings
        return (
            run_upload_pass(runtime, mapping, NoProgress()),
            run_pull_pass(runtime, mapping, NoProgress()),
            run_upload_pass(runtime, mapping, NoProgress()),
        )


def test_two_way_edit_seen_before_a_rename_in_compass_keeps_the_new_name(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    # Under `syncagent run` the upload pass a local save starts can come before
    # the pull that would bring a colleague's rename: the revision must not put the
    # old name back in Compass.
    doc, config, mirror = two_way_of(writer, tmp_path, emulator.url, "draft.txt")
    writer.rename({doc: "final by a colleague.txt"})
    (mirror / "draft.txt").write_bytes(b"base, edited here\n")

    upload, pull, after = upload_pull_upload(config)

    assert upload.revised == 0
    assert "renamed in Compass" in upload.failures[0].reason
    assert (pull.renamed, pull.conflicts, pull.failures) == (1, 0, [])
    assert (after.revised, after.failures) == (1, [])
    assert contents(mirror) == {"final by a colleague.txt": b"base, edited here\n"}
    asset = writer.asset(doc)
    assert asset["name"] == "final by a colleague.txt"
    assert asset["checksum"] == md5(b"base, edited here\n")


def test_a_file_that_cannot_leave_its_folder_leaves_no_copies_in_the_trash(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shoot = writer.make_folder("Shoot", ROOT)
    frame = writer.upload(shoot, "frame.txt", b"frame\n")
    config = mirror_config(tmp_path, emulator.url)
    mirror = tmp_path / "mirror"
    assert pulled(sync_once(config)).downloaded == 1
    writer.remove(shoot, [frame])
    unlink = Dir.unlink

    def refusing(self: Dir, name: str) -> None:
        # As in a folder that forbids removing names (chmod a-w, chattr +i).
        if name == "frame.txt":
            raise PermissionError(1, "Operation not permitted", name)
        unlink(self, name)

    monkeypatch.setattr(Dir, "unlink", refusing)
    for _ in range(3):
        report = pulled(sync_once(config))
        assert report.trashed == 0
        assert [(f.rel_path, f.reason) for f in report.failures] == [
            (
                "Shoot/frame.txt",
                "local error while moving it to the trash: Operation not permitted",
            )
        ]

    # Said once, when it first happened; `status` lists it meanwhile.
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warned] == [
        "Shoot/frame.txt: local error while moving it to the trash: Operation not "
        "permitted"
    ]
    trash = mirror / ".syncagent-trash"
    assert [p for p in trash.rglob("*") if not p.is_dir()] == []
    assert (mirror / "Shoot/frame.txt").stat().st_nlink == 1

    monkeypatch.setattr(Dir, "unlink", unlink)
    assert pulled(sync_once(config)).trashed == 1
    assert contents(mirror) == {".syncagent-trash/Shoot/frame.txt": b"frame\n"}


def test_two_way_same_edit_on_both_sides_is_no_conflict(
    emulator: EmulatorServer,
    writer: CompassWriter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    doc = writer.upload(ROOT, "notes.txt", b"base\n")
    config = mirror_config(tmp_path, emulator.url, direction="both")
    mirror = tmp_path / "mirror"
    assert all(r.ok for r in sync_once(config))
    writer.revise(doc, "notes.txt", b"base, and the same edit\n")
    (mirror / "notes.txt").write_bytes(b"base, and the same edit\n")
    revisions = len(writer.revisions(doc))

    upload, pull, again = upload_pull_upload(config)

    assert (upload.adopted, upload.revised, upload.failures) == (1, 0, [])
    assert (pull.updated, pull.conflicts, pull.downloaded) == (0, 0, 0)
    assert (again.revised, again.adopted, again.failures) == (0, 0, [])
    assert contents(mirror) == {"notes.txt": b"base, and the same edit\n"}
    assert len(writer.revisions(doc)) == revisions
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_nul_character_in_compass_names_stops_no_pull(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path, ledger_url: str
) -> None:
    # No file system takes it in a name, and PostgreSQL refuses it in text: one
    # such name stopped every pull (and the whole sync) on a PostgreSQL ledger.
    odd = writer.make_folder("sub\x00folder", ROOT)
    writer.upload(odd, "inner.txt", b"inner\n")
    writer.upload(ROOT, "x\x00y.txt", b"odd\n")
    writer.upload(ROOT, "plain.txt", b"plain\n")
    config = mirror_config(tmp_path, emulator.url, ledger=ledger_url)

    first = run_sync(config)

    assert first.returncode == 0, first.stderr
    assert first.mapping["downloaded"] == 3
    assert contents(tmp_path / "mirror") == {
        "plain.txt": b"plain\n",
        "x_y.txt": b"odd\n",
        "sub_folder/inner.txt": b"inner\n",
    }
    again = run_sync(config)
    assert (again.returncode, again.mapping["unchanged"]) == (0, 3)
    assert again.mapping["renamed"] == 0


def test_two_way_edit_after_a_rename_out_of_view_goes_up_at_once(
    emulator: EmulatorServer, writer: CompassWriter, tmp_path: Path
) -> None:
    # The pull keeps a file renamed in Compass to a left-out name under its old
    # name here: waiting for the pull to rename it would wait for ever.
    doc, config, mirror = two_way_of(writer, tmp_path, emulator.url, "control.txt")
    writer.rename({doc: ".control.txt"})  # hidden: the default excludes leave it out
    (mirror / "control.txt").write_bytes(b"base, edited here\n")

    upload, pull, again = upload_pull_upload(config)

    assert (upload.revised, upload.failures) == (1, [])
    assert (pull.failures, again.revised, again.failures) == ([], 0, [])
    asset = writer.asset(doc)
    assert asset["name"] == ".control.txt"
    assert asset["checksum"] == md5(b"base, edited here\n")
    assert contents(mirror) == {"control.txt": b"base, edited here\n"}

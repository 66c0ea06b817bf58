"""A download and the disk it lands on: no transfer that cannot fit, downloads at once
sharing the free space, a full disk keeping what came, and every byte counted."""

from __future__ import annotations

import errno
import os
import random
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import pytest

from syncagent.compass import CompassClient
from syncagent.compass.client import Download
from syncagent.engine import download
from syncagent.engine.disk_space import (
    SPARE_BYTES,
    NoRoom,
    SpaceReservations,
    free_bytes,
)
from syncagent.engine.download import DiskFilled, Downloader, Expected, temp_name
from syncagent.engine.hashing import md5_hex
from syncagent.engine.progress import NoProgress
from syncagent.engine.safe_root import SafeRoot

MB = 1_000_000
WAIT_SECONDS = 10


class Storage:
    """One file served from any offset, as a presigned URL is; it can pause after
    its first chunk until told to go on."""

    def __init__(self, data: bytes, *, pause: bool = False) -> None:
        self.data = data
        self.offsets: list[int] = []
        self.paused = threading.Event()
        self.resume = threading.Event()
        if not pause:
            self.resume.set()

    @contextmanager
    def open_download(self, url: str, offset: int = 0) -> Iterator[Download]:
        self.offsets.append(offset)
        yield Download(offset, len(self.data), self._chunks(offset))

    def _chunks(self, offset: int) -> Iterator[bytes]:
        for start in range(offset, len(self.data), MB):
            yield self.data[start : start + MB]
            self.paused.set()
            assert self.resume.wait(WAIT_SECONDS)


class Disk:
    """A small disk holding the test's root: what is free is its size less the
    bytes of the files on it."""

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.size = size

    def free(self, dir_fd: int) -> int:
        del dir_fd
        used = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return self.size - used


def downloader(
    root: Path, storage: Storage, disk: Disk, book: SpaceReservations | None = None
) -> Downloader:
    return Downloader(
        cast(CompassClient, storage),
        SafeRoot(root),
        NoProgress(),
        attempts=2,
        free_space=disk.free,
        reservations=book or SpaceReservations(),
    )


def fetch(agent: Downloader, key: str, data: bytes, name: str) -> None:
    """Download `data` under `key` and place it as `name`."""
    expected = Expected(md5_hex(data), len(data))
    with agent.fetched("", key, lambda: "http://s3.test/x", expected) as got:
        got.place_new(name)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_a_download_the_disk_cannot_hold_fails_before_any_byte_is_sent(
    tmp_path: Path,
) -> None:
    data = payload(10 * MB, seed=1)
    storage = Storage(data)
    agent = downloader(tmp_path, storage, Disk(tmp_path, 4 * MB + SPARE_BYTES))

    with pytest.raises(NoRoom) as refused:
        fetch(agent, "1-abc", data, "big.mov")

    assert refused.value.reason == (
        f"needs 10.0 MB, 4.0 MB free on the disk of {tmp_path}; not downloaded "
        "until space is freed"
    )
    assert not refused.value.permanent
    assert storage.offsets == []
    assert list(tmp_path.iterdir()) == []


def test_a_partial_download_of_the_same_version_counts_toward_what_fits(
    tmp_path: Path,
) -> None:
    data = payload(10 * MB, seed=2)
    (tmp_path / temp_name("1-abc")).write_bytes(data[: 7 * MB])
    storage = Storage(data)
    # 3 MB short of the whole file: exactly what the partial leaves to fetch.
    agent = downloader(tmp_path, storage, Disk(tmp_path, 10 * MB + SPARE_BYTES))

    fetch(agent, "1-abc", data, "big.mov")

    assert storage.offsets == [7 * MB]
    assert (tmp_path / "big.mov").read_bytes() == data


@contextmanager
def paused_download(
    root: Path, data: bytes, disk: Disk, book: SpaceReservations
) -> Iterator[None]:
    """A download of `data` to `a`, held after its first chunk while the body runs."""
    slow = Storage(data, pause=True)
    running = threading.Thread(
        target=fetch, args=(downloader(root, slow, disk, book), "1-a", data, "a")
    )
    running.start()
    try:
        assert slow.paused.wait(WAIT_SECONDS)
        yield
    finally:
        slow.resume.set()
        running.join(WAIT_SECONDS)


def test_downloads_at_once_do_not_count_the_same_free_space(tmp_path: Path) -> None:
    first, second = payload(10 * MB, seed=3), payload(8 * MB, seed=4)
    disk = Disk(tmp_path, 15 * MB + SPARE_BYTES)
    book = SpaceReservations()
    late = Storage(second)
    # Alone on the disk it would fit; beside the first, which needs 9 MB more, it
    # cannot.
    with (
        paused_download(tmp_path, first, disk, book),
        pytest.raises(NoRoom) as refused,
    ):
        fetch(downloader(tmp_path, late, disk, book), "2-b", second, "b")

    assert refused.value.reason == (
        f"needs 8.0 MB, 5.0 MB free on the disk of {tmp_path} after 9.0 MB for "
        "downloads in progress; not downloaded until space is freed"
    )
    assert late.offsets == []
    assert (tmp_path / "a").read_bytes() == first
    assert book.claims == set()


def test_a_claim_shrinks_as_its_bytes_land(tmp_path: Path) -> None:
    first, second = payload(4 * MB, seed=5), payload(3 * MB, seed=6)
    disk = Disk(tmp_path, 6 * MB + SPARE_BYTES)
    book = SpaceReservations()
    with paused_download(tmp_path, first, disk, book):
        # 1 MB of the first is on the disk and 3 MB still claimed: that leaves 2 MB
        # for the second, which needs 3, and 3 once the disk grows by 1 MB. Had the
        # first kept its whole claim of 4 MB, there would still be only 2.
        with pytest.raises(NoRoom):
            fetch(downloader(tmp_path, Storage(second), disk, book), "2-b", second, "b")
        disk.size += 1 * MB

        fetch(downloader(tmp_path, Storage(second), disk, book), "2-b", second, "b")

    assert (tmp_path / "a").read_bytes() == first
    assert (tmp_path / "b").read_bytes() == second


def test_a_disk_that_fills_up_midway_keeps_the_partial_to_resume_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(6 * MB, seed=7)
    storage = Storage(data)
    agent = downloader(tmp_path, storage, Disk(tmp_path, 100 * MB))
    add = download._Transfer.add

    def fills_at_3_mb(self: download._Transfer, chunk: bytes) -> None:
        if self.offset >= 3 * MB:
            raise OSError(errno.ENOSPC, "No space left on device")
        add(self, chunk)

    monkeypatch.setattr(download._Transfer, "add", fills_at_3_mb)
    with pytest.raises(DiskFilled) as filled:
        fetch(agent, "1-abc", data, "clip.mov")

    assert filled.value.reason == (
        "the disk filled up (No space left on device); the 3.0 MB downloaded so far "
        "are kept and the download resumes from there once space is freed"
    )
    assert not filled.value.permanent
    assert (tmp_path / temp_name("1-abc")).read_bytes() == data[: 3 * MB]

    monkeypatch.setattr(download._Transfer, "add", add)
    fetch(agent, "1-abc", data, "clip.mov")

    assert storage.offsets == [0, 3 * MB]
    assert (tmp_path / "clip.mov").read_bytes() == data
    assert not (tmp_path / temp_name("1-abc")).exists()


def test_the_bytes_of_a_download_that_failed_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(5 * MB, seed=8)
    agent = downloader(tmp_path, Storage(data), Disk(tmp_path, 100 * MB))
    add = download._Transfer.add

    def fills_at_2_mb(self: download._Transfer, chunk: bytes) -> None:
        if self.offset >= 2 * MB:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        add(self, chunk)

    monkeypatch.setattr(download._Transfer, "add", fills_at_2_mb)
    counted: list[int] = []
    expected = Expected(md5_hex(data), len(data))

    with (
        pytest.raises(DiskFilled),
        agent.fetched(
            "", "1-abc", lambda: "u", expected, count_received=counted.append
        ),
    ):
        pass

    assert counted == [2 * MB]


def test_the_free_space_measured_is_what_a_user_without_privileges_may_write(
    tmp_path: Path,
) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        measured = free_bytes(fd)
    finally:
        os.close(fd)

    # The machine is shared: others may write between the two measures.
    assert abs(measured - shutil.disk_usage(tmp_path).free) < 64 * MB

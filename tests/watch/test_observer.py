"""Watchers on real folders: inotify and polling, settling, a lost root."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from syncagent.config import MappingConfig
from syncagent.engine.scanner import stat_file
from syncagent.watch import MappingWatcher

SETTLE = 0.3


class Changes:
    """The reasons a watcher gave for wanting a pass, in order."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        with self._lock:
            self.reasons.append(reason)

    def count(self, reason: str) -> int:
        with self._lock:
            return self.reasons.count(reason)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@contextmanager
def watching(
    root: Path, watch: str = "native"
) -> Iterator[tuple[MappingWatcher, Changes]]:
    changes = Changes()
    mapping = MappingConfig(local_root=root, folder_id=1001, watch=watch)
    watcher = MappingWatcher(mapping, SETTLE, changes)
    watcher.start()
    try:
        yield watcher, changes
    finally:
        watcher.stop()


def test_a_file_written_in_chunks_is_handed_on_once_it_settles(tmp_path: Path) -> None:
    with watching(tmp_path) as (watcher, changes):
        path = tmp_path / "clip.mov"
        with open(path, "wb") as stream:
            for _ in range(4):
                stream.write(b"x" * 1000)
                stream.flush()
                time.sleep(SETTLE / 2)
                # Still being written: a pass now must leave it alone.
                local = stat_file(tmp_path, "clip.mov")
                assert local is not None and watcher.defer(local)
        assert wait_for(lambda: changes.count("settled") >= 1)
        local = stat_file(tmp_path, "clip.mov")
        assert local is not None and local.size == 4000
        assert watcher.defer(local) is False


def test_a_rename_reaches_the_agent_as_a_move(tmp_path: Path) -> None:
    (tmp_path / "a.mov").write_bytes(b"still")
    with watching(tmp_path) as (_, changes):
        (tmp_path / "a.mov").rename(tmp_path / "b.mov")
        assert wait_for(lambda: changes.count("moved") >= 1)
        assert changes.count("settled") == 0


def test_the_polling_observer_sees_a_change_inotify_does_not_announce(
    tmp_path: Path,
) -> None:
    """A write through a hard link outside the watched folder raises no inotify event
    on the folder, as writes from another machine on a network share raise none."""
    native_root, poll_root, outside = (tmp_path / n for n in ("native", "poll", "out"))
    for folder in (native_root, poll_root, outside):
        folder.mkdir()
    (outside / "shared.mov").write_bytes(b"v1")
    (native_root / "shared.mov").hardlink_to(outside / "shared.mov")
    (outside / "other.mov").write_bytes(b"v1")
    (poll_root / "other.mov").hardlink_to(outside / "other.mov")

    with (
        watching(native_root) as (_, native),
        watching(poll_root, "poll") as (poller, polled),
    ):
        assert poller.polling
        time.sleep(1.2)  # let the poller take its first snapshot
        with open(outside / "shared.mov", "ab") as stream:
            stream.write(b" and v2")
        with open(outside / "other.mov", "ab") as stream:
            stream.write(b" and v2")
        assert wait_for(lambda: polled.count("settled") >= 1)
        assert native.reasons == []


def test_the_polling_observer_finds_a_new_file(tmp_path: Path) -> None:
    with watching(tmp_path, "poll") as (watcher, changes):
        time.sleep(0.2)
        (tmp_path / "dropped.pdf").write_bytes(b"%PDF")
        assert wait_for(lambda: changes.count("settled") >= 1)
        assert watcher.watching


def test_a_lost_root_is_watched_again_once_it_is_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with watching(root) as (watcher, changes):
        assert watcher.watching
        shutil.rmtree(root)
        assert wait_for(lambda: not watcher.watching)
        root.mkdir()
        assert wait_for(lambda: changes.count("watch restored") >= 1)
        (root / "after.txt").write_bytes(b"back")
        assert wait_for(lambda: changes.count("settled") >= 1)


def test_a_root_moved_away_and_made_again_is_watched_anew(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with watching(root) as (_, changes):
        root.rename(tmp_path / "root.old")  # the watch follows the old folder
        root.mkdir()
        assert wait_for(lambda: changes.count("watch restored") >= 1)
        (root / "new.txt").write_bytes(b"in the new folder")
        assert wait_for(lambda: changes.count("settled") >= 1)


def test_a_root_missing_at_start_is_watched_once_it_appears(tmp_path: Path) -> None:
    root = tmp_path / "later"
    with watching(root) as (watcher, changes):
        assert not watcher.watching
        root.mkdir()
        assert wait_for(lambda: watcher.watching)
        assert changes.count("watch restored") == 1


def test_a_new_link_pipe_or_undecodable_name_asks_for_a_pass(tmp_path: Path) -> None:
    with watching(tmp_path) as (_, changes):
        (tmp_path / "link.txt").symlink_to("/etc/hostname")
        assert wait_for(lambda: changes.count("settled") == 1)
        os.mkfifo(tmp_path / "fifo.txt")
        assert wait_for(lambda: changes.count("settled") == 2)
        with open(os.fsencode(tmp_path) + b"/bad\xfe.txt", "wb") as stream:
            stream.write(b"x")
        assert wait_for(lambda: changes.count("settled") == 3)

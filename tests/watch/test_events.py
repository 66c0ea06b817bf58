"""The event router: which watchdog events queue a file and which ask for a pass."""

from __future__ import annotations

import os
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from syncagent.config import DEFAULT_EXCLUDES
from syncagent.engine.filters import PathFilter
from syncagent.watch.events import EventRouter
from syncagent.watch.paths import is_watched, relative_path
from syncagent.watch.settle import SettleQueue


class Owner:
    """Records what the router reports."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lost = 0

    def request_pass(self, reason: str) -> None:
        self.requests.append(reason)

    def root_lost(self) -> None:
        self.lost += 1


def make_router(root: Path, exclude: tuple[str, ...] = DEFAULT_EXCLUDES):
    queue = SettleQueue(root, 5.0)
    owner = Owner()
    rules = PathFilter(["*"], [*exclude, "/done"])
    return EventRouter(root, rules, queue, owner), queue, owner


def test_relative_paths_use_slashes_and_refuse_the_root_and_outside(
    tmp_path: Path,
) -> None:
    assert relative_path(tmp_path, str(tmp_path / "a" / "b.txt")) == "a/b.txt"
    assert relative_path(tmp_path, str(tmp_path)) is None
    assert relative_path(tmp_path, str(tmp_path) + "-other/x") is None
    assert relative_path(tmp_path, b"/elsewhere/x") is None


def test_paths_inside_excluded_folders_are_not_watched() -> None:
    rules = PathFilter(["*"], [".*", "/done", "*.tmp"])
    assert is_watched(rules, "a/b.mov", is_dir=False)
    assert not is_watched(rules, ".git/objects/ab", is_dir=False)
    assert not is_watched(rules, "done/a.mov", is_dir=False)
    assert not is_watched(rules, "done", is_dir=True)
    assert is_watched(rules, "sub/done/a.mov", is_dir=False)  # only the root's done/
    assert not is_watched(rules, "a.tmp", is_dir=False)


def test_writes_queue_the_file_and_reads_are_ignored(tmp_path: Path) -> None:
    router, queue, owner = make_router(tmp_path)
    (tmp_path / "a.mov").write_bytes(b"x")
    path = str(tmp_path / "a.mov")

    router.dispatch(FileOpenedEvent(path))
    router.dispatch(FileClosedNoWriteEvent(path))
    assert queue.pending() == []

    router.dispatch(FileCreatedEvent(path))
    router.dispatch(FileModifiedEvent(path))
    assert queue.pending() == ["a.mov"]
    assert owner.requests == []


def test_a_close_after_writing_queues_the_file_again(tmp_path: Path) -> None:
    # A file left by a pass while a program held it open for writing (nothing
    # written since, so no other event comes) goes up once that program closes it.
    router, queue, owner = make_router(tmp_path)
    (tmp_path / "render.mov").write_bytes(b"x")
    path = str(tmp_path / "render.mov")

    router.dispatch(FileClosedEvent(path))

    assert queue.pending() == ["render.mov"]
    assert owner.requests == []


def test_excluded_files_are_never_queued(tmp_path: Path) -> None:
    router, queue, _ = make_router(tmp_path)
    (tmp_path / "done").mkdir()
    for name in ("x.tmp", ".hidden", "done/a.mov"):
        (tmp_path / name).write_bytes(b"x")
        router.dispatch(FileCreatedEvent(str(tmp_path / name)))
    assert queue.pending() == []


def test_a_rename_asks_for_a_pass_at_once_and_forgets_the_old_name(
    tmp_path: Path,
) -> None:
    router, queue, owner = make_router(tmp_path)
    (tmp_path / "old.mov").write_bytes(b"x")
    router.dispatch(FileCreatedEvent(str(tmp_path / "old.mov")))
    (tmp_path / "old.mov").rename(tmp_path / "new.mov")

    router.dispatch(
        FileMovedEvent(str(tmp_path / "old.mov"), str(tmp_path / "new.mov"))
    )
    assert owner.requests == ["moved"]
    assert queue.pending() == []  # the pass decides whether new.mov has settled


def test_moving_a_file_out_to_an_excluded_folder_still_asks_for_a_pass(
    tmp_path: Path,
) -> None:
    router, _, owner = make_router(tmp_path)
    src, dest = str(tmp_path / "a.mov"), str(tmp_path / "done" / "a.mov")
    router.dispatch(FileMovedEvent(src, dest))
    assert owner.requests == ["moved"]

    router.dispatch(FileMovedEvent(str(tmp_path / "x.tmp"), str(tmp_path / "y.tmp")))
    assert owner.requests == ["moved"]


def test_a_deletion_asks_for_a_pass_and_the_root_deleted_is_a_lost_watch(
    tmp_path: Path,
) -> None:
    router, _, owner = make_router(tmp_path)
    router.dispatch(FileDeletedEvent(str(tmp_path / "a.mov")))
    router.dispatch(FileDeletedEvent(str(tmp_path / "b.tmp")))
    assert owner.requests == ["deleted"]

    router.dispatch(DirDeletedEvent(str(tmp_path)))
    assert owner.lost == 1


def test_a_new_folder_is_walked_into_the_queue(tmp_path: Path) -> None:
    router, queue, owner = make_router(tmp_path)
    shoot = tmp_path / "shoot" / "day 1"
    shoot.mkdir(parents=True)
    (shoot / "a.jpg").write_bytes(b"a")
    (shoot / "b.jpg").write_bytes(b"b")
    (shoot / ".DS_Store").write_bytes(b"c")
    (tmp_path / "shoot" / ".cache").mkdir()
    (tmp_path / "shoot" / ".cache" / "x").write_bytes(b"x")

    router.dispatch(DirCreatedEvent(str(tmp_path / "shoot")))
    assert queue.pending() == ["shoot/day 1/a.jpg", "shoot/day 1/b.jpg"]
    assert owner.requests == ["new folder"]


def test_lost_events_ask_for_a_full_rescan(tmp_path: Path) -> None:
    router, _, owner = make_router(tmp_path)
    router.dispatch(EventsLostEvent(str(tmp_path), is_directory=True))
    assert owner.requests == ["events lost"]


def test_an_error_while_routing_costs_a_rescan_not_the_watch(tmp_path: Path) -> None:
    router, queue, owner = make_router(tmp_path)

    def broken(rel_path: str) -> None:
        raise RuntimeError("disk on fire")

    queue.touch = broken  # type: ignore[method-assign]
    router.dispatch(FileCreatedEvent(str(tmp_path / "a.mov")))
    assert owner.requests == ["an event could not be handled"]


def test_links_pipes_and_undecodable_names_are_queued_for_a_pass(
    tmp_path: Path,
) -> None:
    router, queue, _ = make_router(tmp_path)
    (tmp_path / "link.txt").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "fifo.txt")
    bad = os.fsencode(tmp_path) + b"/bad\xfe.txt"
    with open(bad, "wb") as stream:
        stream.write(b"x")
    for path in (str(tmp_path / "link.txt"), str(tmp_path / "fifo.txt"), bad):
        router.dispatch(FileCreatedEvent(os.fsdecode(path)))
    assert queue.pending() == sorted(
        ["link.txt", "fifo.txt", os.fsdecode(b"bad\xfe.txt")]
    )


def test_a_download_a_pull_puts_in_place_is_not_queued(tmp_path: Path) -> None:
    router, queue, _ = make_router(tmp_path)
    temp, final = tmp_path / ".syncagent-dl-7-abc.part", tmp_path / "clip.mov"
    temp.write_bytes(b"downloaded")
    temp.rename(final)

    router.dispatch(FileMovedEvent(str(temp), str(final)))
    router.dispatch(FileModifiedEvent(str(final)))  # its own late events

    assert queue.pending() == []
    final.write_bytes(b"then changed here")
    router.dispatch(FileModifiedEvent(str(final)))
    assert queue.pending() == ["clip.mov"]

"""The settle queue: a file goes on only after holding still for settle_seconds."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from syncagent.watch.settle import UNREADABLE_GRACE_SECONDS, SettleQueue


class Clock:
    """A monotonic clock and a wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_800_000_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def make_queue(
    root: Path, clock: Clock, settle: float = 5.0, *, sidecars: bool = False
) -> SettleQueue:
    return SettleQueue(
        root,
        settle,
        clock=lambda: clock.now,
        wall_clock=lambda: clock.wall,
        sidecars=sidecars,
    )


def write(path: Path, data: bytes, clock: Clock) -> None:
    """Write a file and stamp it with the test's wall clock."""
    path.write_bytes(data)
    stamp = int(clock.wall * 1e9)
    os.utime(path, ns=(stamp, stamp))


def test_a_file_is_due_only_after_it_held_still_for_settle_seconds(
    tmp_path: Path,
) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.mov", b"first chunk", clock)
    queue.touch("a.mov")

    clock.advance(4.9)
    assert queue.due() == []
    assert queue.pending() == ["a.mov"]

    clock.advance(0.2)
    assert queue.due() == ["a.mov"]
    assert queue.pending() == []


def test_a_write_during_the_wait_starts_it_over(tmp_path: Path) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.mov", b"chunk 1", clock)
    queue.touch("a.mov")
    clock.advance(4.0)
    write(tmp_path / "a.mov", b"chunk 1 chunk 2", clock)
    queue.touch("a.mov")

    clock.advance(4.0)
    assert queue.due() == []
    clock.advance(1.5)
    assert queue.due() == ["a.mov"]


def test_a_change_without_an_event_is_noticed_when_due(tmp_path: Path) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.mov", b"chunk 1", clock)
    queue.touch("a.mov")
    clock.advance(3.0)
    write(tmp_path / "a.mov", b"chunk 1 and more", clock)  # no touch: a missed event

    clock.advance(2.5)
    assert queue.due() == []  # the size moved: the wait starts again from now
    clock.advance(5.0)
    assert queue.due() == ["a.mov"]


def test_a_file_deleted_while_waiting_leaves_quietly(tmp_path: Path) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "gone.txt", b"x", clock)
    queue.touch("gone.txt")
    (tmp_path / "gone.txt").unlink()

    clock.advance(6.0)
    assert queue.due() == []
    assert queue.pending() == []


def test_touching_a_missing_file_forgets_it(tmp_path: Path) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.txt", b"x", clock)
    queue.touch("a.txt")
    (tmp_path / "a.txt").unlink()
    queue.touch("a.txt")
    assert queue.pending() == []


def test_take_admits_an_old_file_and_holds_back_a_young_one(tmp_path: Path) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "old.txt", b"old", clock)
    clock.advance(10.0)
    write(tmp_path / "young.txt", b"young", clock)
    clock.advance(1.0)
    old = (tmp_path / "old.txt").stat()
    young = (tmp_path / "young.txt").stat()

    assert queue.take("old.txt", old.st_size, old.st_mtime_ns) is True
    assert queue.take("young.txt", young.st_size, young.st_mtime_ns) is False
    assert queue.pending() == ["young.txt"]

    # Its wait counts from its mtime: 1 s gone already, 4 s to go.
    clock.advance(3.5)
    assert queue.due() == []
    clock.advance(0.6)
    assert queue.due() == ["young.txt"]


def test_take_holds_back_a_queued_file_until_settled(tmp_path: Path) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.mov", b"abc", clock)
    queue.touch("a.mov")
    st = (tmp_path / "a.mov").stat()

    clock.advance(2.0)
    assert queue.take("a.mov", st.st_size, st.st_mtime_ns) is False
    clock.advance(3.5)
    assert queue.take("a.mov", st.st_size, st.st_mtime_ns) is True
    assert queue.pending() == []


def test_take_restarts_the_wait_when_the_pass_saw_another_size(
    tmp_path: Path,
) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.mov", b"abc", clock)
    queue.touch("a.mov")
    clock.advance(6.0)
    st = (tmp_path / "a.mov").stat()

    assert queue.take("a.mov", st.st_size + 10, st.st_mtime_ns) is False
    clock.advance(1.0)
    assert queue.take("a.mov", st.st_size + 10, st.st_mtime_ns) is False
    assert queue.pending() == ["a.mov"]


def test_a_released_file_is_taken_even_with_a_future_mtime(tmp_path: Path) -> None:
    """A share with a fast clock stamps files in the future; observation decides."""
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    path = tmp_path / "skewed.mov"
    path.write_bytes(b"data")
    future = int((clock.wall + 3600) * 1e9)
    os.utime(path, ns=(future, future))
    queue.touch("skewed.mov")

    clock.advance(5.5)
    assert queue.due() == ["skewed.mov"]
    st = path.stat()
    assert queue.take("skewed.mov", st.st_size, st.st_mtime_ns) is True


def test_an_unreadable_file_waits_then_goes_on_for_the_pass_to_report(
    tmp_path: Path,
) -> None:
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "locked.mov", b"x", clock)
    queue.touch("locked.mov")
    queue._readable = lambda rel_path: False  # type: ignore[method-assign]

    clock.advance(6.0)
    assert queue.due() == []
    clock.advance(UNREADABLE_GRACE_SECONDS)
    assert queue.due() == ["locked.mov"]


def test_links_pipes_and_undecodable_names_settle_without_being_opened(
    tmp_path: Path,
) -> None:
    """They cannot be uploaded, but a pass must run soon to report them."""
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    (tmp_path / "link.txt").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "fifo.txt")
    bad = os.fsdecode(b"bad\xfe.txt")
    write(tmp_path / bad, b"x", clock)
    opened: list[str] = []

    def readable(rel_path: str) -> bool:
        opened.append(rel_path)
        return True

    queue._readable = readable  # type: ignore[method-assign]
    for rel_path in ("link.txt", "fifo.txt", bad):
        queue.touch(rel_path)

    clock.advance(4.0)
    assert queue.due() == []
    clock.advance(1.5)
    assert queue.due() == sorted([bad, "fifo.txt", "link.txt"])
    assert opened == [bad]  # a pipe would block, a link leads out of the root


# -- what a drop box announces ------------------------------------------------------


def announced(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The INFO lines of the queue so far (what a person reads in the log)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "syncagent.watch.settle" and r.levelno >= logging.INFO
    ]


def test_a_sidecar_after_its_file_is_no_drop_of_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="syncagent.watch.settle")
    clock = Clock()
    queue = make_queue(tmp_path, clock, sidecars=True)
    write(tmp_path / "good.txt", b"g", clock)
    queue.touch("good.txt")
    write(tmp_path / "good.txt.json", b"{}", clock)
    queue.touch("good.txt.json")

    clock.advance(5.5)
    assert queue.due() == ["good.txt", "good.txt.json"]  # a pass still takes both
    assert announced(caplog) == ["good.txt: queued, waiting for it to settle"]


def test_a_sidecar_before_its_file_is_announced_with_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.watch.settle")
    clock = Clock()
    queue = make_queue(tmp_path, clock, sidecars=True)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub/a.mov.json", b"{}", clock)
    queue.touch("sub/a.mov.json")
    clock.advance(1.0)
    write(tmp_path / "sub/a.mov", b"a", clock)
    queue.touch("sub/a.mov")

    clock.advance(5.5)
    assert queue.due() == ["sub/a.mov", "sub/a.mov.json"]
    assert announced(caplog) == [
        "sub/a.mov: queued with its sidecar sub/a.mov.json, waiting for them to settle"
    ]


def test_a_json_with_no_file_beside_it_is_announced_once_it_settles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.watch.settle")
    clock = Clock()
    queue = make_queue(tmp_path, clock, sidecars=True)
    write(tmp_path / "alone.txt.json", b"{}", clock)
    queue.touch("alone.txt.json")
    assert announced(caplog) == []

    clock.advance(5.5)
    assert queue.due() == ["alone.txt.json"]
    assert announced(caplog) == [
        "alone.txt.json: queued as a file of its own: no alone.txt beside it to be "
        "the sidecar of"
    ]


def test_a_fresh_sidecar_a_pass_finds_is_not_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass asks about a file's sidecar too; it joins the queue quietly."""
    caplog.set_level(logging.INFO, logger="syncagent.watch.settle")
    clock = Clock()
    queue = make_queue(tmp_path, clock, sidecars=True)
    write(tmp_path / "a.mov", b"a", clock)
    write(tmp_path / "a.mov.json", b"{}", clock)
    st = (tmp_path / "a.mov.json").stat()

    assert queue.take("a.mov.json", st.st_size, st.st_mtime_ns) is False
    clock.advance(5.5)
    assert queue.take("a.mov.json", st.st_size, st.st_mtime_ns) is True
    assert announced(caplog) == []


def test_outside_a_drop_box_a_json_file_is_queued_like_any_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.watch.settle")
    clock = Clock()
    queue = make_queue(tmp_path, clock)
    write(tmp_path / "a.mov", b"a", clock)
    write(tmp_path / "a.mov.json", b"{}", clock)
    queue.touch("a.mov")
    queue.touch("a.mov.json")
    assert announced(caplog) == [
        "a.mov: queued, waiting for it to settle",
        "a.mov.json: queued, waiting for it to settle",
    ]

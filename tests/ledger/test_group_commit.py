"""Writes that arrive together share a transaction; each still fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from syncagent.ledger.group_commit import DeferredCommits, GroupCommit, Then


class FakeDatabase:
    """Counts transactions; a write of "bad" fails its whole transaction."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self.transactions = 0
        self.first_open = threading.Event()
        self.release_first = threading.Event()

    @contextmanager
    def transaction(self) -> Iterator[list[str]]:
        self.transactions += 1
        if self.transactions == 1:
            self.first_open.set()
            assert self.release_first.wait(10)
        pending: list[str] = []
        yield pending
        if "bad" in pending:
            raise RuntimeError("constraint failed")
        self.committed.extend(pending)


def writer(name: str):  # type: ignore[no-untyped-def]
    return lambda pending: pending.append(name)


def test_writes_waiting_for_a_commit_share_the_next_transaction() -> None:
    database = FakeDatabase()
    group = GroupCommit(database.transaction)  # type: ignore[arg-type]
    first = threading.Thread(target=group.run, args=(writer("w0"),))
    first.start()
    assert database.first_open.wait(10)

    # Three writes arrive while the first transaction is open.
    errors: dict[str, BaseException] = {}

    def run(name: str) -> None:
        try:
            group.run(writer(name))
        except RuntimeError as exc:
            errors[name] = exc

    waiting = [threading.Thread(target=run, args=(n,)) for n in ("w1", "bad", "w3")]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 10
    while len(group._waiting) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the three wait behind the open transaction
    database.release_first.set()
    for thread in [first, *waiting]:
        thread.join(10)

    # One shared transaction failed because of "bad"; each write then ran alone.
    assert sorted(database.committed) == ["w0", "w1", "w3"]
    assert list(errors) == ["bad"]
    assert database.transactions == 1 + 1 + 3


def test_a_write_alone_commits_at_once_and_raises_its_own_error() -> None:
    database = FakeDatabase()
    database.release_first.set()
    group = GroupCommit(database.transaction)  # type: ignore[arg-type]

    group.run(writer("w0"))
    with pytest.raises(RuntimeError, match="constraint failed"):
        group.run(writer("bad"))

    assert database.committed == ["w0"]
    assert database.transactions == 2


def test_every_write_of_many_threads_is_committed_once() -> None:
    database = FakeDatabase()
    database.release_first.set()
    group = GroupCommit(database.transaction)  # type: ignore[arg-type]
    names = [f"w{i}" for i in range(200)]
    threads = [threading.Thread(target=group.run, args=(writer(n),)) for n in names]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(database.committed) == sorted(names)


def deferred_on(database: FakeDatabase) -> DeferredCommits:
    """Deferred commits that linger long enough for a test's writes to gather."""
    return DeferredCommits(database.transaction, linger=0.5)  # type: ignore[arg-type]


def test_deferred_writes_arriving_together_share_one_transaction() -> None:
    database = FakeDatabase()
    database.release_first.set()
    deferred = deferred_on(database)
    followed: list[tuple[str, BaseException | None, bool]] = []

    def follow(name: str) -> Then:
        def then(error: BaseException | None) -> None:
            followed.append((name, error, name in database.committed))

        return then

    for name in ("w0", "w1", "w2"):
        deferred.submit(writer(name), follow(name))
    deferred.flush()

    # Submitted within the linger, the three went in one commit, in order, and
    # each was followed up once, after its commit.
    assert database.committed == ["w0", "w1", "w2"]
    assert database.transactions == 1
    assert followed == [("w0", None, True), ("w1", None, True), ("w2", None, True)]


def test_a_failing_deferred_write_fails_alone_and_its_follow_up_sees_why() -> None:
    database = FakeDatabase()
    database.release_first.set()
    deferred = deferred_on(database)
    errors: dict[str, BaseException | None] = {}

    def follow(name: str) -> Then:
        return lambda error: errors.update({name: error})

    for name in ("w0", "bad", "w2"):
        deferred.submit(writer(name), follow(name))
    deferred.flush()

    assert database.committed == ["w0", "w2"]
    assert errors["w0"] is None and errors["w2"] is None
    assert isinstance(errors["bad"], RuntimeError)


def test_flush_raises_what_a_follow_up_raised_once_everything_is_committed() -> None:
    database = FakeDatabase()
    database.release_first.set()
    deferred = deferred_on(database)

    def refuse(error: BaseException | None) -> None:
        raise OSError("the ledger's disk is full")

    deferred.submit(writer("w0"), refuse)
    deferred.submit(writer("w1"), lambda error: None)
    started = time.monotonic()
    with pytest.raises(OSError, match="disk is full"):
        deferred.flush()

    # flush() did not sit out the linger, and the write after the failed
    # follow-up was still committed; the error is reported once.
    assert time.monotonic() - started < 0.4
    assert database.committed == ["w0", "w1"]
    deferred.flush()

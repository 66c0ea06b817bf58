"""The per-mapping runner: one pass at a time, requests coalesced, retries, stop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from syncagent.agent.runner import MappingRunner
from syncagent.compass import AuthenticationFailed
from syncagent.ledger import LedgerError


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Passes:
    """A pass that blocks until released, counting runs and overlaps."""

    def __init__(self, retry: bool = False) -> None:
        self.runs: list[str] = []
        self.active = 0
        self.most_active = 0
        self.gate = threading.Event()
        self.gate.set()
        self.retry = retry
        self._lock = threading.Lock()

    def make(self, kind: str) -> Callable[[threading.Event], bool]:
        def run(stop: threading.Event) -> bool:
            with self._lock:
                self.active += 1
                self.most_active = max(self.most_active, self.active)
                self.runs.append(kind)
            self.gate.wait(10)
            with self._lock:
                self.active -= 1
            return self.retry

        return run


def test_requests_during_a_pass_coalesce_into_one_more_pass() -> None:
    passes = Passes()
    passes.gate.clear()
    runner = MappingRunner("m", {"upload": passes.make("upload")}, lambda e: None)
    runner.start()
    runner.request("upload", "start")
    assert wait_for(lambda: passes.active == 1)

    for index in range(50):
        runner.request("upload", f"settled {index}")
    passes.gate.set()

    assert wait_for(lambda: runner.idle)
    assert passes.runs == ["upload", "upload"]
    assert passes.most_active == 1
    runner.stop()
    assert runner.join(5)


def test_kinds_run_in_their_given_order_and_unknown_kinds_are_ignored() -> None:
    passes = Passes()
    passes.gate.clear()
    runner = MappingRunner(
        "m",
        {"pull": passes.make("pull"), "upload": passes.make("upload")},
        lambda e: None,
    )
    runner.request("upload", "settled")
    runner.request("pull", "scheduled")
    runner.request("mirror", "nonsense")
    runner.start()
    passes.gate.set()

    assert wait_for(lambda: runner.idle and len(passes.runs) == 2)
    assert passes.runs == ["pull", "upload"]
    runner.stop()
    assert runner.join(5)


def test_a_pass_that_wants_a_retry_runs_again_after_a_backoff() -> None:
    passes = Passes(retry=True)
    runner = MappingRunner(
        "m", {"upload": passes.make("upload")}, lambda e: None, retry_first=0.05
    )
    runner.start()
    runner.request("upload", "start")

    assert wait_for(lambda: len(passes.runs) >= 3)
    passes.retry = False
    runs = len(passes.runs)
    assert wait_for(lambda: runner.idle)
    runner.stop()
    assert runner.join(5)
    assert len(passes.runs) <= runs + 1


def test_a_pass_that_goes_through_after_failures_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = Passes(retry=True)
    runner = MappingRunner(
        "m", {"pull": passes.make("pull")}, lambda e: None, retry_first=0.05
    )

    with caplog.at_level(logging.INFO, logger="syncagent.agent.runner"):
        runner.start()
        runner.request("pull", "start")
        assert wait_for(lambda: len(passes.runs) >= 2)
        passes.retry = False
        failed = len(passes.runs)
        assert wait_for(lambda: runner.idle and len(passes.runs) > failed)
        runner.request("pull", "scheduled")  # a later pass, fine as well
        assert wait_for(lambda: runner.idle and len(passes.runs) > failed + 1)
        runner.stop()
        assert runner.join(5)

    back = [r for r in caplog.records if "went through again" in r.getMessage()]
    assert [r.getMessage() for r in back] == ["m: the pull pass went through again"]


def test_a_crashing_pass_is_logged_and_retried() -> None:
    calls: list[int] = []

    def crash(stop: threading.Event) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("unexpected")
        return False

    runner = MappingRunner("m", {"upload": crash}, lambda e: None, retry_first=0.05)
    runner.start()
    runner.request("upload", "start")
    assert wait_for(lambda: len(calls) == 2)
    runner.stop()
    assert runner.join(5)


def test_a_ledger_error_is_one_line_and_the_pass_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def locked(stop: threading.Event) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise LedgerError("cannot write the ledger at sqlite:///l.db: disk is full")
        return False

    runner = MappingRunner("m", {"upload": locked}, lambda e: None, retry_first=0.05)
    with caplog.at_level(logging.ERROR, logger="syncagent.agent.runner"):
        runner.start()
        runner.request("upload", "start")
        assert wait_for(lambda: len(calls) == 2)
        runner.stop()
        assert runner.join(5)

    [error] = caplog.records
    assert error.getMessage() == (
        "m: the upload pass failed; retrying later: cannot write the ledger at "
        "sqlite:///l.db: disk is full"
    )
    assert error.exc_info is None  # no traceback for an error that says it all


def test_refused_credentials_are_fatal() -> None:
    fatal: list[BaseException] = []

    def refused(stop: threading.Event) -> bool:
        raise AuthenticationFailed("Compass refused user 'demo'")

    runner = MappingRunner("m", {"upload": refused}, fatal.append)
    runner.start()
    runner.request("upload", "start")
    assert runner.join(5)
    assert [str(e) for e in fatal] == ["Compass refused user 'demo'"]


def test_stop_reaches_the_running_pass_and_starts_no_new_one() -> None:
    seen_stop = threading.Event()
    started = threading.Event()
    runs: list[int] = []

    def long_pass(stop: threading.Event) -> bool:
        runs.append(1)
        started.set()
        if stop.wait(10):
            seen_stop.set()
        return False

    runner = MappingRunner("m", {"upload": long_pass}, lambda e: None)
    runner.start()
    runner.request("upload", "start")
    assert started.wait(5)
    runner.request("upload", "settled")
    runner.stop()

    assert runner.join(5)
    assert seen_stop.is_set()
    assert runs == [1]


def test_a_pull_that_went_well_keeps_the_retry_an_upload_pass_asked_for() -> None:
    runs: list[str] = []
    uploads_failing = [True]

    def pull(stop: threading.Event) -> bool:
        runs.append("pull")
        return False

    def upload(stop: threading.Event) -> bool:
        runs.append("upload")
        return uploads_failing.pop() if uploads_failing else False

    runner = MappingRunner(
        "m", {"pull": pull, "upload": upload}, lambda e: None, retry_first=0.3
    )
    runner.start()
    runner.request("upload", "settled")
    assert wait_for(lambda: runs == ["upload"] and runner.idle)
    runner.request("pull", "scheduled")

    # The retry is due after the pull: every kind runs again, the pull first.
    assert wait_for(lambda: runs == ["upload", "pull", "pull", "upload"])
    assert wait_for(lambda: runner.idle)
    runner.stop()
    assert runner.join(5)


def test_a_pass_that_fails_while_stopping_announces_no_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = threading.Event()

    def upload(stop: threading.Event) -> bool:
        started.set()
        stop.wait(5)
        return True  # failed: would be retried, were the agent not stopping

    runner = MappingRunner("m", {"upload": upload}, lambda e: None, retry_first=0.3)
    runner.start()
    runner.request("upload", "settled")
    assert started.wait(5)
    with caplog.at_level(logging.INFO, logger="syncagent.agent.runner"):
        runner.stop()
        assert runner.join(5)

    assert "trying the upload pass again" not in caplog.text


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "again in" in r.getMessage()]


def test_a_retry_announces_the_scheduled_run_when_that_comes_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = Passes(retry=True)
    runner = MappingRunner(
        "m",
        {"pull": passes.make("pull")},
        lambda e: None,
        retry_first=30,
        next_scheduled=lambda kind: 3.0 if kind == "pull" else None,
    )
    with caplog.at_level(logging.INFO, logger="syncagent.agent.runner"):
        runner.start()
        for _ in range(4):  # each failure doubles the backoff, past the schedule
            runner.request("pull", "scheduled")
            assert wait_for(lambda: runner.idle)
        runner.stop()
        assert runner.join(5)

    assert (
        retry_lines(caplog)
        == ["m: trying the pull pass again in 3 s, at its next scheduled run"] * 4
    )


def test_a_retry_announces_its_backoff_when_that_comes_before_the_schedule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = Passes(retry=True)
    runner = MappingRunner(
        "m",
        {"upload": passes.make("upload")},
        lambda e: None,
        retry_first=30,
        next_scheduled=lambda kind: 3600.0,
    )
    with caplog.at_level(logging.INFO, logger="syncagent.agent.runner"):
        runner.start()
        for _ in range(2):
            runner.request("upload", "settled")
            assert wait_for(lambda: runner.idle)
        runner.stop()
        assert runner.join(5)

    assert retry_lines(caplog) == [
        "m: trying the upload pass again in 30 s",
        "m: trying the upload pass again in 60 s",
    ]

"""The agent's clock: when each interval job next asks for a pass."""

from __future__ import annotations

from syncagent.agent.scheduler import PassScheduler


def test_seconds_until_a_job_next_runs() -> None:
    scheduler = PassScheduler()
    scheduler.every("pull:1", 30, lambda: None)
    scheduler.start()
    try:
        until = scheduler.seconds_until("pull:1")
        assert until is not None and 29 < until <= 30
        assert scheduler.seconds_until("rescan:1") is None
    finally:
        scheduler.stop()

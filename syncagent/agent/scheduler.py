"""The agent's clock: APScheduler interval jobs that ask for rescans and pulls.

Jobs only mark a pass as wanted on a mapping's runner, so they never overlap and a
missed run (a suspended laptop) is coalesced into one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


class PassScheduler:
    """Interval jobs on a background thread."""

    def __init__(self) -> None:
        # APScheduler logs every run at INFO; the agent's own lines say what matters.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": None,
            },
        )

    def every(self, job_id: str, seconds: float, job: Callable[[], None]) -> None:
        """Run `job` every `seconds`, the first time one interval from now."""
        first = datetime.now(UTC) + timedelta(seconds=seconds)
        self._scheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            id=job_id,
            next_run_time=first,
        )
        log.debug("%s: every %.0f s", job_id, seconds)

    def seconds_until(self, job_id: str) -> float | None:
        """Seconds until the job next runs (0 if overdue); None if there is no such
        job or it will not run again."""
        job = self._scheduler.get_job(job_id)
        if job is None or job.next_run_time is None:
            return None
        return max((job.next_run_time - datetime.now(UTC)).total_seconds(), 0.0)

    def start(self) -> None:
        """Start the scheduler thread."""
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the scheduler; jobs in progress finish on their own."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

"""One thread per mapping runs its passes one at a time.

Requests (a watcher's change, the scheduler's rescan or pull, a retry) only mark a pass
as wanted; requests that arrive while a pass runs make exactly one more pass after it.
So two passes of one mapping never overlap and a burst of events costs one or two
passes, not one each. Each kind keeps its own retry: a pull that went well does not
cancel the retry an upload pass asked for. A failed kind whose scheduled run comes
before its backoff needs no retry of its own: the scheduled run is its next attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from syncagent.compass import AuthenticationFailed
from syncagent.ledger import LedgerError

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 15.0
RETRY_MAX_SECONDS = 600.0

# A pass gets the stop event and answers whether it should be retried soon.
PassFunction = Callable[[threading.Event], bool]

# Seconds until the scheduler next asks for a pass of a kind; None if it never does.
NextScheduled = Callable[[str], float | None]


def _never_scheduled(kind: str) -> float | None:
    del kind
    return None


class MappingRunner:
    """Runs the passes of one mapping, by kind, in the order the kinds are given."""

    def __init__(
        self,
        name: str,
        passes: Mapping[str, PassFunction],
        on_fatal: Callable[[BaseException], None],
        *,
        retry_first: float = RETRY_FIRST_SECONDS,
        retry_max: float = RETRY_MAX_SECONDS,
        next_scheduled: NextScheduled = _never_scheduled,
    ) -> None:
        self.name = name
        self.passes = dict(passes)
        self.on_fatal = on_fatal
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.next_scheduled = next_scheduled
        self.stop_event = threading.Event()
        self._wanted: dict[str, set[str]] = {}
        self._retry_at: dict[str, float] = {}
        self._retry_delay: dict[str, float] = {}
        self._running = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._loop, name=f"mapping:{name}", daemon=True
        )
        self.passes_run = 0

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def request(self, kind: str, reason: str) -> None:
        """Ask for a pass of `kind`; coalesced with any already wanted."""
        if kind not in self.passes:
            return
        with self._cond:
            self._wanted.setdefault(kind, set()).add(reason)
            self._cond.notify()

    def stop(self) -> None:
        """Start no new pass; tell the running one to start no new file."""
        self.stop_event.set()
        with self._cond:
            self._cond.notify()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; whether it did."""
        if self._thread.is_alive():
            self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    @property
    def idle(self) -> bool:
        """Whether no pass is running or wanted."""
        with self._cond:
            return not self._wanted and not self._running

    def _loop(self) -> None:
        while True:
            wanted = self._next()
            if wanted is None:
                return
            for kind, reasons in wanted.items():
                if self.stop_event.is_set():
                    return
                self._schedule_retry(kind, self._run(kind, reasons))
            with self._cond:
                self._running = False

    def _next(self) -> dict[str, set[str]] | None:
        """Wait until a pass is wanted (or a retry is due); None once stopping."""
        with self._cond:
            while not self._wanted and not self.stop_event.is_set():
                now = time.monotonic()
                if self._retry_at and now >= min(self._retry_at.values()):
                    # Every kind runs, in order: a failed upload of a two-way mapping
                    # may need the pull before it (a conflict to settle first).
                    for kind in [k for k, due in self._retry_at.items() if now >= due]:
                        del self._retry_at[kind]
                    for kind in self.passes:
                        self._wanted.setdefault(kind, set()).add("retry")
                    break
                timeout = None
                if self._retry_at:
                    timeout = max(min(self._retry_at.values()) - now, 0.0)
                self._cond.wait(timeout)
            if self.stop_event.is_set():
                return None
            wanted = {k: self._wanted.pop(k) for k in self.passes if k in self._wanted}
            self._running = True
            return wanted

    def _run(self, kind: str, reasons: set[str]) -> bool:
        log.debug("%s: %s pass (%s)", self.name, kind, ", ".join(sorted(reasons)))
        try:
            retry = self.passes[kind](self.stop_event)
        except AuthenticationFailed as exc:
            log.error("%s: %s", self.name, exc)
            self.on_fatal(exc)
            self.stop_event.set()
            return False
        except LedgerError as exc:
            # Its message says what and why (a full or locked disk): no traceback.
            log.error(
                "%s: the %s pass failed; retrying later: %s", self.name, kind, exc
            )
            retry = True
        except Exception:
            log.exception("%s: the %s pass failed; retrying later", self.name, kind)
            retry = True
        self.passes_run += 1
        return retry

    def _schedule_retry(self, kind: str, retry: bool) -> None:
        """After a pass of `kind`: retry that kind later, backing off, or stop
        retrying it (other kinds keep their own retries)."""
        with self._cond:
            if not retry or self.stop_event.is_set():
                # Stopping: the next start resumes what is left; no retry to announce.
                self._retry_at.pop(kind, None)
                failed_before = self._retry_delay.pop(kind, None) is not None
                if failed_before and not retry and not self.stop_event.is_set():
                    # The end of an outage is news to whoever watched it begin.
                    log.info("%s: the %s pass went through again", self.name, kind)
                return
            delay = self._retry_delay.get(kind, self.retry_first)
            self._retry_delay[kind] = min(delay * 2, self.retry_max)
            scheduled = self.next_scheduled(kind)
            if scheduled is not None and scheduled <= delay:
                # The scheduled run comes first and is the next attempt: no timer.
                self._retry_at.pop(kind, None)
                log.info(
                    "%s: trying the %s pass again in %.0f s, at its next scheduled run",
                    self.name,
                    kind,
                    max(scheduled, 0.0),
                )
                return
            self._retry_at[kind] = time.monotonic() + delay
            log.info("%s: trying the %s pass again in %.0f s", self.name, kind, delay)

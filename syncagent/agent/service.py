"""The `syncagent run` service: a watcher and a pass runner per mapping; a scheduler.

At start every mapping gets its passes: a pull if it downloads, and an upload pass,
which resumes the uploads the ledger has in flight and rescans, if it uploads. After
that, upload passes run when files settle, when the watch reports a move, a deletion, a
new folder or lost events, and at every `rescan_interval`; pulls every
`pull_interval`.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

from syncagent.agent.runner import MappingRunner
from syncagent.agent.scheduler import PassScheduler
from syncagent.config import MappingConfig
from syncagent.display import counted
from syncagent.engine.dropbox import ingest_mapping, moves_on_ingest
from syncagent.engine.progress import NoProgress
from syncagent.engine.report import PassReport
from syncagent.runtime import Runtime, log_label, run_pull_pass, run_upload_pass
from syncagent.watch import MappingWatcher

log = logging.getLogger(__name__)

# The scheduler's job per kind of pass: pulls on `pull_interval`, upload passes (full
# rescans) on `rescan_interval`.
_JOBS = {"pull": "pull", "upload": "rescan"}


class RegistrationLost(Exception):
    """Another process removed this agent's registration on the ledger."""


class AgentService:
    """Watchers, runners and the scheduler over one open runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.runners: list[MappingRunner] = []
        self.watchers: list[MappingWatcher] = []
        self.scheduler = PassScheduler()
        self.stopping = threading.Event()
        self.fatal: BaseException | None = None
        runtime.on_registration_lost = self._registration_lost
        if runtime.registration_lost.is_set():
            self._registration_lost()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start watching and the first pass of every mapping (none once a stop
        was asked for)."""
        if self.stopping.is_set():
            return
        agent = self.config.agent
        for index, mapping in enumerate(self.config.mappings, start=1):
            self._add_mapping(index, mapping)
        self.scheduler.start()
        log.info(
            "agent started: %d mappings, settle %.1f s, rescan every %.0f s",
            len(self.config.mappings),
            agent.settle_seconds,
            agent.rescan_interval,
        )

    def wait(self) -> None:
        """Block until a stop is requested (a signal, or a fatal error)."""
        while not self.stopping.wait(0.5):
            pass

    def _registration_lost(self) -> None:
        self._fatal(RegistrationLost("another agent took over the ledger"))

    def request_stop(self, why: str) -> None:
        """Ask the service to stop (safe from a signal handler)."""
        if not self.stopping.is_set():
            log.info("stopping (%s)", why)
        self.stopping.set()

    def shutdown(self, timeout: float) -> bool:
        """Stop watching and scheduling, let running passes finish their files.

        Returns whether every pass ended within `timeout` seconds.
        """
        for watcher in self.watchers:
            watcher.stop()
        self.scheduler.stop()
        for runner in self.runners:
            runner.stop()
        deadline = time.monotonic() + timeout
        return all(r.join(deadline - time.monotonic()) for r in self.runners)

    # -- mappings ---------------------------------------------------------------

    def _add_mapping(self, index: int, mapping: MappingConfig) -> None:
        name = str(mapping.local_root)
        runner = MappingRunner(
            name, {}, self._fatal, next_scheduled=partial(self._next_scheduled, index)
        )
        if mapping.downloads:
            # Pulls run before uploads, as in `syncagent sync`.
            runner.passes["pull"] = partial(self._pull_pass, mapping, runner)
            runner.request("pull", "start")
            self.scheduler.every(
                _job_id("pull", index),
                self.config.agent.pull_interval,
                partial(runner.request, "pull", "scheduled"),
            )
        if mapping.uploads:
            watcher = MappingWatcher(
                ingest_mapping(mapping),
                self.config.agent.settle_seconds,
                partial(runner.request, "upload"),
                label=log_label(self.config, mapping),
            )
            runner.passes["upload"] = partial(
                self._upload_pass, mapping, watcher, runner
            )
            self.watchers.append(watcher)
            watcher.start()
            runner.request("upload", "start")
            self.scheduler.every(
                _job_id("upload", index),
                self.config.agent.rescan_interval,
                partial(runner.request, "upload", "rescan"),
            )
        self.runners.append(runner)
        runner.start()

    def _upload_pass(
        self,
        mapping: MappingConfig,
        watcher: MappingWatcher,
        runner: MappingRunner,
        stop: threading.Event,
    ) -> bool:
        """One upload pass; whether it should be tried again soon."""
        report = run_upload_pass(
            self.runtime,
            mapping,
            NoProgress(),
            defer=watcher.defer,
            stop=stop,
            watched=True,
        )
        _log_report(report)
        if report.renamed and moves_on_ingest(mapping):
            # A drop box file renamed while it went up has its asset renamed by this
            # pass; the next one moves it to done/ (or deletes it).
            runner.request("upload", "renamed in a drop box")
        if report.awaiting_pull:
            # What changed in Compass comes down first; the pull's end then sends
            # this side's change up.
            runner.request("pull", "changed on both sides")
        return _wants_retry(report)

    def _pull_pass(
        self, mapping: MappingConfig, runner: MappingRunner, stop: threading.Event
    ) -> bool:
        """One pull pass; whether it should be tried again soon."""
        report = run_pull_pass(self.runtime, mapping, NoProgress(), stop=stop)
        _log_report(report)
        if (report.conflicts or report.renamed) and mapping.uploads:
            # Compass's version is saved beside the file, or its new name given to
            # it: a change made here goes up as a revision now, not at the next
            # rescan.
            runner.request("upload", "after a conflict or a rename")
        return _wants_retry(report)

    def _next_scheduled(self, index: int, kind: str) -> float | None:
        """Seconds until the scheduler next asks mapping `index` for a `kind` pass."""
        return self.scheduler.seconds_until(_job_id(kind, index))

    def _fatal(self, exc: BaseException) -> None:
        self.fatal = exc
        self.request_stop(f"fatal: {exc}")
        for runner in self.runners:
            runner.stop()  # no new pass, not even before the shutdown begins


def _job_id(kind: str, index: int) -> str:
    """The scheduler's job that asks mapping `index` for `kind` passes."""
    return f"{_JOBS[kind]}:{index}"


def _wants_retry(report: PassReport) -> bool:
    """Whether a pass should run again soon: it stopped, or a failure may pass."""
    return report.fatal is not None or any(not f.permanent for f in report.failures)


def _log_report(report: PassReport) -> None:
    if report.fatal is not None and report.fatal_logged:
        # Said at ERROR already, when the pass stopped: one line per failed pass.
        log.debug("%s: pass stopped: %s", report.local_root, report.fatal)
        return
    if report.fatal is not None:
        log.error("%s: pass stopped: %s", report.local_root, report.fatal)
        return
    done = counted(report)
    if report.failures:
        done.append(f"{len(report.failures)} failed")
    if not done:
        log.debug("%s: pass found nothing to do", report.local_root)
        return
    log.info(
        "%s: pass done: %s in %.1f s",
        report.local_root,
        ", ".join(done),
        report.seconds,
    )

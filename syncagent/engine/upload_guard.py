"""The guard around each file's work in an upload pass: a failure is recorded on
that file (ledger, report, hooks) and the pass goes on; Compass gone stops it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from syncagent.compass import (
    AuthenticationFailed,
    CompassError,
    CompassUnreachable,
    RequestRejected,
)
from syncagent.engine.problems import (
    FileProblem,
    FileVanished,
    UploadStopped,
    reported_before,
)
from syncagent.engine.upload_state import UploadPassState
from syncagent.ledger import LedgerError, UploadRecord
from syncagent.logs import in_context

log = logging.getLogger(__name__)


class FailureGuard(UploadPassState):
    """Runs a file's work so that its failure is recorded, never raised."""

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        rel_path: str,
        action: Callable[..., None],
        *args: object,
    ) -> Future[None]:
        return pool.submit(in_context(self._guard), rel_path, action, *args)

    def _join(self, futures: Sequence[Future[None]]) -> None:
        """Wait for every file's work and for the records it deferred; re-raise the
        first error that escaped its guard."""
        wait(futures)
        self.ledger.flush_deferred()
        for future in futures:
            future.result()

    def _guard(self, rel_path: str, action: Callable[..., None], *args: object) -> None:
        """Run one file's work; record its failure instead of raising."""
        if self._stopping():
            log.debug("%s: left for the next run (stopping)", rel_path)
            self.cut_short = True
            return
        self._run_guarded(rel_path, action, *args)

    def _run_guarded(
        self, rel_path: str, action: Callable[..., None], *args: object
    ) -> None:
        """Run work on a file, stopping or not; record its failure, never raise
        (but for refused credentials and a failing ledger, which end the pass)."""
        try:
            action(*args)
        except FileProblem as exc:
            self.cut_short = self.cut_short or isinstance(exc, UploadStopped)
            self._failed(rel_path, exc.reason, exc)
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
        except CompassError as exc:
            self._failed(rel_path, str(exc), exc)
        except OSError as exc:
            self._failed(rel_path, f"local error: {exc.strerror or exc}", exc)
        except LedgerError:
            raise
        except Exception as exc:
            # A bug must not stop the other files; keep the traceback for a report.
            log.exception("%s: unexpected error", rel_path)
            self._failed(rel_path, f"unexpected error: {exc!r}", exc)

    def _stopping(self) -> bool:
        """Whether to start no new work: the agent is stopping, or Compass is gone."""
        return self.stop.is_set() or self._halted.is_set()

    def _halt(self, exc: CompassUnreachable) -> None:
        """Compass cannot be reached: stop this pass, saying so once."""
        if not self._halted.is_set():
            self._halted.set()
            log.error("%s: %s; the pass stops here", self.root, exc)
            self.report.fatal = f"Compass cannot be reached; the pass stopped: {exc}"
            self.report.fatal_logged = True

    def _guard_batch(
        self,
        uploads: Sequence[UploadRecord],
        action: Callable[[Sequence[UploadRecord]], dict[int, int]],
    ) -> dict[int, int]:
        """Run `action` on a batch of uploads; what it returns, or nothing when
        Compass failed it (each upload of the batch is then failed with the reason,
        or the pass halted when Compass is unreachable)."""
        if not uploads:
            return {}
        try:
            return action(uploads)
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
        except CompassError as exc:
            for upload in uploads:
                self._failed(upload.rel_path, str(exc), exc)
        return {}

    def _failed(
        self,
        rel_path: str,
        reason: str,
        exc: Exception,
        *,
        changed_ns: int | None = None,
    ) -> None:
        if isinstance(exc, FileVanished) and self.watched:
            # Under the agent's watch, which follows the file, it is only news.
            log.info("%s: %s; the watch follows it", rel_path, reason)
            return
        permanent = isinstance(exc, RequestRejected) or (
            isinstance(exc, FileProblem) and exc.permanent
        )
        if self._reported_before(rel_path, reason, changed_ns):
            log.debug("%s: %s (unchanged since it was reported)", rel_path, reason)
        else:
            log.warning("%s: %s", rel_path, reason)
        self.report.fail(rel_path, reason, permanent=permanent)
        if not isinstance(exc, UploadStopped):
            # A stopped upload is in flight (the ledger's uploads), not failed.
            self.ledger.record_failure(
                self.mapping_id, rel_path, "upload", reason, permanent=permanent
            )
        self.progress.file_done(rel_path, "failed")
        self.hooks.failed(rel_path, reason, permanent=permanent)

    def _left_for_next_pass(self, rel_path: str, reason: str) -> None:
        """A file this pass leaves to the next one: news under the agent's watch,
        whose events bring that pass; not synced yet for a one-shot sync."""
        if self.watched:
            log.info("%s: %s", rel_path, reason)
        else:
            log.warning("%s: %s", rel_path, reason)
            self.report.fail(rel_path, reason, permanent=False)

    def _reported_before(
        self, rel_path: str, reason: str, changed_ns: int | None
    ) -> bool:
        """Whether this failure was reported already on the file as it is now;
        `changed_ns` is the path's ctime if the caller has it."""
        known = self._known_failures.get(rel_path)
        if known is None:
            return False
        if changed_ns is None:
            with contextlib.suppress(OSError):
                changed_ns = os.lstat(self.root / rel_path).st_ctime_ns
        return reported_before(known, reason, changed_ns)

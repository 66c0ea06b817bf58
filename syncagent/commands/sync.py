"""`syncagent sync`: one pull and/or upload per mapping, a summary and an exit code."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from syncagent.compass import AuthenticationFailed, CompassError
from syncagent.config import Config, ConfigError, MappingConfig
from syncagent.display import print_json, print_summary, progress_display
from syncagent.engine.progress import Progress
from syncagent.engine.report import PassReport
from syncagent.engine.scanner import LocalFile
from syncagent.ledger import LedgerError
from syncagent.logs import setup_logging
from syncagent.runtime import Runtime, open_runtime, run_pull_pass, run_upload_pass

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


EXIT_INTERRUPTED = 130


def run_sync(config: Config, *, dry_run: bool, as_json: bool, verbose: int) -> int:
    """Run one sync and return the process exit code."""
    setup_logging(verbose)
    for warning in config.warnings:
        log.warning("%s", warning)
    interrupt = threading.Event()
    try:
        with (
            _stop_on_signals(interrupt, as_json),
            progress_display(not as_json) as progress,
            open_runtime(config, "sync", progress) as runtime,
        ):
            runtime.client.authenticate()
            reports = sync_mappings(runtime, progress, dry_run=dry_run, stop=interrupt)
    except ConfigError as exc:
        return _stopped(f"configuration error: {exc}", 2, as_json)
    except AuthenticationFailed as exc:
        return _stopped(str(exc), 2, as_json)
    except (CompassError, LedgerError) as exc:
        return _stopped(f"sync stopped: {exc}", 1, as_json)

    code = 0 if all(r.ok for r in reports) else 1
    if interrupt.is_set():
        code = EXIT_INTERRUPTED
    if as_json:
        print_json(reports, sys.stdout, code)
    else:
        print_summary(reports, sys.stdout, dry_run=dry_run)
    return code


def _stopped(message: str, code: int, as_json: bool) -> int:
    """Report a sync that could not run to its end; a JSON reader still gets JSON."""
    log.error("%s", message)
    if as_json:
        print_json([], sys.stdout, code, fatal=message)
    return code


def sync_mappings(
    runtime: Runtime,
    progress: Progress,
    *,
    dry_run: bool,
    stop: threading.Event | None = None,
) -> list[PassReport]:
    """Per mapping, the pull first (what Compass changed comes down, so conflicts are
    seen before anything goes up), then the upload. Once `stop` is set, no new
    mapping or file starts."""
    stop = stop or threading.Event()
    reports: list[PassReport] = []
    for mapping in runtime.config.mappings:
        if mapping.downloads and not stop.is_set():
            reports.append(
                run_pull_pass(runtime, mapping, progress, dry_run=dry_run, stop=stop)
            )
        if mapping.uploads and not stop.is_set():
            reports.append(_upload(runtime, mapping, progress, dry_run, stop))
    return reports


def _upload(
    runtime: Runtime,
    mapping: MappingConfig,
    progress: Progress,
    dry_run: bool,
    stop: threading.Event,
) -> PassReport:
    """One upload pass. A drop box's files are moved or deleted once ingested, so a
    file that may still be arriving (changed within settle_seconds) waits for the
    next run rather than going up torn; a sync mapping would only send a revision."""
    if mapping.mode != "dropbox":
        return run_upload_pass(runtime, mapping, progress, dry_run=dry_run, stop=stop)
    settle = runtime.config.agent.settle_seconds

    def arriving(local: LocalFile) -> bool:
        return time.time() - local.mtime_ns / 1e9 < settle

    reason = (
        f"may still be arriving: changed less than settle_seconds ({settle:g} s) "
        "ago; taken by the next run once it holds still"
    )
    return run_upload_pass(
        runtime,
        mapping,
        progress,
        dry_run=dry_run,
        stop=stop,
        defer=arriving,
        deferred_reason=reason,
    )


@contextmanager
def _stop_on_signals(interrupt: threading.Event, as_json: bool) -> Iterator[None]:
    """The first SIGINT or SIGTERM asks the sync to stop at the next part boundary;
    a second one quits at once."""

    def ask_to_stop(signum: int, _frame: object) -> None:
        if interrupt.is_set():
            _quit_now(as_json)
        interrupt.set()
        log.warning(
            "stopping: the parts in flight finish, the rest resumes on the next run "
            "(signal again to quit at once)"
        )

    saved = {sig: signal.signal(sig, ask_to_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _quit_now(as_json: bool) -> NoReturn:
    """A second signal: exit at once, as a kill would. Every step is checkpointed in
    the ledger, so the next run resumes the transfers cut short."""
    message = (
        "stopped at once by a second signal; uploads and downloads in flight resume "
        "from their checkpoint on the next run"
    )
    log.warning("%s", message)
    if as_json:
        print_json([], sys.stdout, EXIT_INTERRUPTED, fatal=message)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)

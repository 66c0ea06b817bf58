"""`syncagent sync`: one pull and/or upload per mapping, a summary and an exit code."""

from __future__ import annotations

import logging
import sys

from syncagent.compass import AuthenticationFailed, CompassError
from syncagent.config import Config, ConfigError
from syncagent.display import print_json, print_summary, progress_display
from syncagent.engine.progress import Progress
from syncagent.engine.report import PassReport
from syncagent.ledger import LedgerError
from syncagent.logs import setup_logging
from syncagent.runtime import Runtime, open_runtime, run_pull_pass, run_upload_pass

log = logging.getLogger(__name__)


def run_sync(config: Config, *, dry_run: bool, as_json: bool, verbose: int) -> int:
    """Run one sync and return the process exit code."""
    setup_logging(verbose)
    try:
        with (
            progress_display(not as_json) as progress,
            open_runtime(config, "sync", progress) as runtime,
        ):
            runtime.client.authenticate()
            reports = sync_mappings(runtime, progress, dry_run=dry_run)
    except ConfigError as exc:
        return _stopped(f"configuration error: {exc}", 2, as_json)
    except AuthenticationFailed as exc:
        return _stopped(str(exc), 2, as_json)
    except (CompassError, LedgerError) as exc:
        return _stopped(f"sync stopped: {exc}", 1, as_json)

    code = 0 if all(r.ok for r in reports) else 1
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
    runtime: Runtime, progress: Progress, *, dry_run: bool
) -> list[PassReport]:
    """Per mapping, the pull first (what Compass changed comes down, so conflicts are
    seen before anything goes up), then the upload."""
    reports: list[PassReport] = []
    for mapping in runtime.config.mappings:
        if mapping.downloads:
            reports.append(run_pull_pass(runtime, mapping, progress, dry_run=dry_run))
        if mapping.uploads:
            reports.append(run_upload_pass(runtime, mapping, progress, dry_run=dry_run))
    return reports

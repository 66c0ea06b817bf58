"""`syncagent sync`: one pass over every mapping, then a summary and an exit code."""

from __future__ import annotations

import logging
import sys

from syncagent.compass import AuthenticationFailed, CompassError
from syncagent.config import Config
from syncagent.display import print_json, print_summary, progress_display
from syncagent.ledger import LedgerError
from syncagent.logs import setup_logging
from syncagent.runtime import open_runtime, run_upload_passes

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
            reports = run_upload_passes(runtime, progress, dry_run=dry_run)
    except AuthenticationFailed as exc:
        log.error("%s", exc)
        return 2
    except (CompassError, LedgerError) as exc:
        log.error("sync stopped: %s", exc)
        return 1

    code = 0 if all(r.ok for r in reports) else 1
    if as_json:
        print_json(reports, sys.stdout, code)
    else:
        print_summary(reports, sys.stdout, dry_run=dry_run)
    return code

"""Wire a configuration to running parts: the Compass client (or the embedded
emulator), the ledger, the uploader, and the identity of this process."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from syncagent.compass import CompassClient, ProxyUnusable
from syncagent.config import Config, ConfigError, MappingConfig
from syncagent.engine.dropbox import (
    Defer,
    HooksFor,
    ingest_mapping,
    mode_hooks,
    pass_defer,
)
from syncagent.engine.identity import owner_is_alive, process_owner
from syncagent.engine.progress import NoProgress, Progress
from syncagent.engine.pull_pass import PullPass
from syncagent.engine.pull_report import PullReport
from syncagent.engine.report import PassReport
from syncagent.engine.upload import LEASE, Uploader
from syncagent.engine.upload_pass import UploadPass
from syncagent.ledger import Ledger, LedgerError, LedgerUnavailable, MappingBusy
from syncagent.logs import about_mapping

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60.0

_Report = TypeVar("_Report", bound=PassReport)


@dataclass
class Runtime:
    """Everything a pass needs, opened from one configuration."""

    config: Config
    client: CompassClient
    ledger: Ledger
    uploader: Uploader
    owner: str
    stop: threading.Event = field(default_factory=threading.Event)
    registration_lost: threading.Event = field(default_factory=threading.Event)
    """Set when another process removed this one's registration on the ledger."""
    on_registration_lost: Callable[[], None] | None = None
    """Called (on the heartbeat's thread) once the registration is found gone."""


@contextmanager
def open_runtime(
    config: Config, kind: str, progress: Progress | None = None
) -> Iterator[Runtime]:
    """Open the client, the ledger and the uploader; start the embedded emulator.

    The process registers on the ledger as `kind` ('sync' or 'run') and keeps its
    leases fresh with a heartbeat until the context ends.
    """
    with _compass_url(config) as url:
        transfer = config.transfer
        try:
            client = CompassClient(
                url,
                config.compass.username,
                config.compass.password,
                concurrency=transfer.concurrency,
                timeout=config.compass.timeout,
                verify=config.compass.verify_tls,
                env_proxies=not config.compass.embedded,
            )
        except ProxyUnusable as exc:
            raise ConfigError(str(exc)) from exc
        try:
            ledger = open_ledger(config)
        except BaseException:
            client.close()
            raise
        owner = process_owner()
        uploader = Uploader(
            client,
            ledger,
            owner=owner,
            part_size=transfer.part_size,
            concurrency=transfer.concurrency,
            memory_limit=transfer.memory_limit,
            ingest_wait=transfer.ingest_wait,
            progress=progress or NoProgress(),
        )
        runtime = Runtime(config, client, ledger, uploader, owner)
        ledger.register_agent(owner, kind, socket.gethostname(), os.getpid())
        beat = threading.Thread(target=_heartbeat, args=(runtime,), daemon=True)
        beat.start()
        try:
            yield runtime
        finally:
            runtime.stop.set()
            uploader.close()
            client.close()
            ledger.unregister_agent(owner)
            ledger.close()


def open_ledger(config: Config, *, read_only: bool = False) -> Ledger:
    """The ledger of a configuration; a ledger that cannot be opened is a
    configuration error naming `ledger.url`, unless its disk failed."""
    try:
        return Ledger(config.ledger_url, read_only=read_only)
    except LedgerUnavailable:
        raise  # not the configuration's fault: a later start can succeed
    except LedgerError as exc:
        raise ConfigError(f"{config.path}: ledger.url: {exc}") from exc


@contextmanager
def _compass_url(config: Config) -> Iterator[str]:
    if not config.compass.embedded:
        yield config.compass.url
        return
    from syncagent.emulator.server import EmulatorServer

    try:
        server = EmulatorServer(data_dir=config.embedded_data)
        url = server.start()
    except OSError as exc:
        raise ConfigError(
            f"{config.path}: embedded.data: cannot run the embedded emulator in "
            f"{config.embedded_data}: {exc.strerror or exc}"
        ) from exc
    log.info("embedded Compass emulator at %s (data in %s)", url, config.embedded_data)
    try:
        yield url
    finally:
        server.stop()


def _heartbeat(runtime: Runtime) -> None:
    while not runtime.stop.wait(HEARTBEAT_SECONDS):
        try:
            registered = runtime.ledger.heartbeat(runtime.owner)
            if registered:
                runtime.ledger.renew_leases(runtime.owner, LEASE)
        except LedgerError as exc:
            log.warning(
                "%s; this agent's upload leases are not renewed, so another agent "
                "may take its uploads over after %.0f minutes; trying again in "
                "%.0f s",
                exc,
                LEASE.total_seconds() / 60,
                HEARTBEAT_SECONDS,
            )
            continue
        except Exception:
            log.exception("ledger heartbeat failed; will try again")
            continue
        if not registered:
            # Only a process that took this one for dead removes its registration
            # (no heartbeat for minutes: suspended with Ctrl-Z, say), and it may
            # be working on the ledger now: two agents must not.
            log.error(
                "this process's registration on the ledger was removed by another "
                "syncagent process, which took it for dead (no heartbeat for "
                "minutes: was it suspended?) and may be running now; stopping"
            )
            runtime.registration_lost.set()
            if runtime.on_registration_lost is not None:
                runtime.on_registration_lost()
            return


def run_upload_passes(
    runtime: Runtime,
    progress: Progress,
    *,
    dry_run: bool = False,
    hooks_for: HooksFor | None = None,
) -> list[PassReport]:
    """One upload pass over every mapping that uploads, one after the other.

    `hooks_for(mapping, mapping_id)` gives each pass its hooks; by default those of
    the mapping's mode (drop box or plain sync).
    """
    reports = []
    for mapping in runtime.config.mappings:
        if not mapping.uploads:
            continue
        reports.append(
            run_upload_pass(
                runtime, mapping, progress, dry_run=dry_run, hooks_for=hooks_for
            )
        )
    return reports


def run_upload_pass(
    runtime: Runtime,
    mapping: MappingConfig,
    progress: Progress,
    *,
    dry_run: bool = False,
    hooks_for: HooksFor | None = None,
    defer: Defer | None = None,
    deferred_reason: str | None = None,
    stop: threading.Event | None = None,
    watched: bool = False,
) -> PassReport:
    """One recorded upload pass over one mapping (`watched`: by the agent, whose
    watch follows files deleted or renamed during the pass).

    `defer` names files to leave for a later pass (still settling), reported with
    `deferred_reason` if given; once `stop` is set the pass starts no new file.
    """
    mapping_id = runtime.ledger.ensure_mapping(
        str(mapping.local_root), mapping.folder_id
    )
    if hooks_for is None:
        hooks_for = mode_hooks(runtime.client, runtime.ledger, dry_run=dry_run)
    hooks = hooks_for(mapping, mapping_id)
    upload_pass = UploadPass(
        mapping=ingest_mapping(mapping),
        mapping_id=mapping_id,
        client=runtime.client,
        ledger=runtime.ledger,
        uploader=runtime.uploader,
        owner=runtime.owner,
        concurrency=runtime.config.transfer.concurrency,
        progress=progress,
        hooks=hooks,
        dry_run=dry_run,
        defer=pass_defer(hooks, defer),
        deferred_reason=deferred_reason,
        stop=stop,
        configured_roots={str(m.local_root) for m in runtime.config.mappings},
        watched=watched,
    )
    return _run_recorded(
        runtime,
        mapping_id,
        upload_pass.report,
        upload_pass.run,
        interrupted=lambda: upload_pass.cut_short,
        dry_run=dry_run,
        label=log_label(runtime.config, mapping),
    )


def _run_recorded(
    runtime: Runtime,
    mapping_id: int,
    report: _Report,
    run: Callable[[], _Report],
    *,
    interrupted: Callable[[], bool],
    dry_run: bool,
    label: str | None,
) -> _Report:
    """Run a pass between its start and its end in the ledger; a mapping another
    live process is passing over is not run (its report says why)."""
    try:
        pass_id = runtime.ledger.start_pass(
            mapping_id,
            report.kind,
            runtime.owner,
            lambda o: owner_is_alive(o, runtime.owner),
        )
    except MappingBusy as exc:
        report.fatal = str(exc)
        return report
    with about_mapping(label):
        report = run()
    outcome = "interrupted" if interrupted() else report.outcome
    _end_pass(runtime, pass_id, outcome, report.to_dict(), dry_run)
    return report


def log_label(config: Config, mapping: MappingConfig) -> str | None:
    """How log lines name the mapping whose work they tell of: not at all when it is
    the only one; else by its folder's name, or its path when another mapping's
    folder has the same name."""
    if len(config.mappings) < 2:
        return None
    name = mapping.local_root.name
    namesakes = sum(m.local_root.name == name for m in config.mappings)
    return name if namesakes == 1 else str(mapping.local_root)


def _end_pass(
    runtime: Runtime, pass_id: int, outcome: str, summary: dict[str, Any], dry: bool
) -> None:
    """Record how a pass ended; a dry run leaves no pass behind, so the last
    pass that status shows is always one that did its work."""
    if dry:
        runtime.ledger.drop_pass(pass_id)
    else:
        runtime.ledger.finish_pass(pass_id, outcome, summary)


def run_pull_pass(
    runtime: Runtime,
    mapping: MappingConfig,
    progress: Progress,
    *,
    dry_run: bool = False,
    stop: threading.Event | None = None,
) -> PullReport:
    """One recorded pull over one mapping; once `stop` is set no new file starts."""
    mapping_id = runtime.ledger.ensure_mapping(
        str(mapping.local_root), mapping.folder_id
    )
    pull = PullPass(
        mapping=mapping,
        mapping_id=mapping_id,
        client=runtime.client,
        ledger=runtime.ledger,
        concurrency=runtime.config.transfer.concurrency,
        progress=progress,
        dry_run=dry_run,
        stop=stop,
    )
    return _run_recorded(
        runtime,
        mapping_id,
        pull.report,
        pull.run,
        interrupted=pull.stop.is_set,
        dry_run=dry_run,
        label=log_label(runtime.config, mapping),
    )

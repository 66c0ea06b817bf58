"""What `syncagent status` reports, read from the ledger and the local trees only.

Never contacts Compass and never registers on the ledger, so it is safe while an agent
runs. Pending files are found by a scan planned against the ledger: local files that
are neither in sync, nor in flight, nor failed.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from syncagent.agent.liveness import liveness
from syncagent.config import Config, MappingConfig
from syncagent.engine.dropbox import failed_drops, ingest_mapping
from syncagent.engine.filters import PathFilter
from syncagent.engine.planner import plan_upload_pass
from syncagent.engine.scanner import scan_tree
from syncagent.engine.sidecar import is_sidecar
from syncagent.ledger import Ledger, utcnow


@dataclass(frozen=True)
class ProcessStatus:
    """A process registered on the ledger and whether it is alive."""

    kind: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    alive: bool
    reason: str


@dataclass(frozen=True)
class FailureStatus:
    """A path that did not sync, and why."""

    rel_path: str
    reason: str
    permanent: bool
    count: int
    last_seen: datetime


@dataclass(frozen=True)
class UploadStatus:
    """An upload in flight and how far it got."""

    rel_path: str
    kind: str
    state: str
    parts_confirmed: int
    part_count: int | None
    file_size: int


@dataclass
class MappingStatus:
    """The state of one mapping."""

    local_root: str
    folder_id: int
    direction: str
    mode: str
    synced: int = 0
    pending: int | None = None
    in_flight: int = 0
    failed: int = 0
    failures: list[FailureStatus] = field(default_factory=list)
    uploads: list[UploadStatus] = field(default_factory=list)
    last_passes: dict[str, dict[str, Any]] = field(default_factory=dict)
    problem: str | None = None
    stopped: str | None = None
    """Why the latest pass of a kind could not run ('upload: ...'), if it could not."""


@dataclass
class Status:
    """Everything `syncagent status` shows."""

    agent_running: bool
    processes: list[ProcessStatus]
    mappings: list[MappingStatus]

    @property
    def troubled(self) -> bool:
        """Whether any mapping has failed entries or stopped short."""
        return any(m.failed or m.problem or m.stopped for m in self.mappings)

    @property
    def failed(self) -> int:
        """Failed entries over every mapping."""
        return sum(m.failed for m in self.mappings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (times as ISO 8601 strings)."""
        return _jsonable(asdict(self)) | {"failed": self.failed}


def collect_status(config: Config, ledger: Ledger) -> Status:
    """Read the state of every mapping and of the processes on the ledger, all as
    of one moment: the counts add up while an agent writes."""
    with ledger.snapshot():
        processes = _processes(ledger)
        mappings = [_mapping_status(m, ledger) for m in config.mappings]
    running = any(p.alive and p.kind == "run" for p in processes)
    if not any(p.alive for p in processes):
        # A pass left open with no live process to run it was cut short.
        for mapping in mappings:
            for last in mapping.last_passes.values():
                if last["finished_at"] is None:
                    last["outcome"] = "interrupted"
    return Status(running, processes, mappings)


def _processes(ledger: Ledger) -> list[ProcessStatus]:
    now = utcnow()
    hostname = socket.gethostname()
    found = []
    for info in ledger.agents():
        verdict = liveness(info, now=now, hostname=hostname)
        found.append(
            ProcessStatus(
                kind=info.kind,
                hostname=info.hostname,
                pid=info.pid,
                started_at=info.started_at,
                heartbeat_at=info.heartbeat_at,
                alive=verdict.alive,
                reason=verdict.reason,
            )
        )
    return found


def _mapping_status(mapping: MappingConfig, ledger: Ledger) -> MappingStatus:
    status = MappingStatus(
        local_root=str(mapping.local_root),
        folder_id=mapping.folder_id,
        direction=mapping.direction,
        mode=mapping.mode,
    )
    mapping_id = ledger.find_mapping(str(mapping.local_root), mapping.folder_id)
    if mapping_id is not None:
        _read_ledger(status, ledger, mapping_id)
    _add_failed_drops(status, mapping)
    if not mapping.local_root.is_dir():
        if mapping.uploads or status.synced:  # else the first pull makes it
            status.problem = "the local folder does not exist"
    elif mapping.uploads:
        status.pending = _pending(status, mapping, ledger, mapping_id)
    status.stopped = _stopped_short(status)
    status.failed = len(status.failures)
    return status


def _stopped_short(status: MappingStatus) -> str | None:
    """Why the latest pass of a kind could not run, if it could not: the mapping
    is not syncing (an unmounted share, Compass unreachable, a permission)."""
    for kind, last in sorted(status.last_passes.items()):
        if last["outcome"] == "error" and last["fatal"]:
            return f"{kind}: {last['fatal']}"
    return None


def _read_ledger(status: MappingStatus, ledger: Ledger, mapping_id: int) -> None:
    status.synced = ledger.count_entries(mapping_id)
    for upload in ledger.uploads(mapping_id):
        status.uploads.append(
            UploadStatus(
                rel_path=upload.rel_path,
                kind=upload.kind,
                state=upload.state,
                parts_confirmed=len(upload.confirmed_parts),
                part_count=upload.part_count,
                file_size=upload.file_size,
            )
        )
    status.in_flight = len(status.uploads)
    status.failures.extend(
        FailureStatus(f.rel_path, f.reason, f.permanent, f.count, f.last_seen)
        for f in ledger.failures(mapping_id)
    )
    for kind in ("upload", "pull"):
        last = ledger.last_pass(mapping_id, kind)
        if last is not None:
            status.last_passes[kind] = {
                "started_at": last.started_at,
                "finished_at": last.finished_at,
                "outcome": last.outcome or "running",
                "counts": _counts(last.summary),
                "fatal": _fatal(last.summary),
            }


def _fatal(summary: str | None) -> str | None:
    """Why a pass stopped short, if it did."""
    try:
        fatal = json.loads(summary or "{}").get("fatal")
    except (json.JSONDecodeError, AttributeError):
        return None
    return fatal if isinstance(fatal, str) else None


def _counts(summary: str | None) -> dict[str, int]:
    """The non-zero counters of a pass summary."""
    try:
        data = json.loads(summary or "{}")
    except json.JSONDecodeError:
        return {}
    return {
        key: value
        for key, value in data.items()
        if isinstance(value, int)
        and not isinstance(value, bool)
        and value
        and key != "folder_id"
    }


def _add_failed_drops(status: MappingStatus, mapping: MappingConfig) -> None:
    """A drop box's failed/ folder holds failures the ledger has let go of."""
    if mapping.mode != "dropbox":
        return
    drops = failed_drops(mapping.local_root)
    moved = {d.rel_path.split("/", 1)[1] for d in drops}
    root = mapping.local_root
    status.failures = [
        f
        for f in status.failures
        if f.rel_path not in moved or (root / f.rel_path).exists()
    ]
    status.failures.extend(
        FailureStatus(d.rel_path, d.reason, True, 1, d.failed_at) for d in drops
    )


def _pending(
    status: MappingStatus,
    mapping: MappingConfig,
    ledger: Ledger,
    mapping_id: int | None,
) -> int:
    """Local files that still have to go up: new, changed or moved."""
    scanned = ingest_mapping(mapping)
    tree = scan_tree(scanned.local_root, PathFilter(scanned.include, scanned.exclude))
    synced = ledger.entries(mapping_id) if mapping_id is not None else {}
    in_flight = {u.rel_path for u in status.uploads}
    plan = plan_upload_pass(tree, synced, in_flight)
    waiting = {f.rel_path for f in plan.uploads}
    waiting.update(f.rel_path for f, _ in plan.revisions)
    waiting.update(f.rel_path for f, _ in plan.checks)
    waiting.update(r.local.rel_path for r in plan.renames)
    waiting -= {f.rel_path for f in status.failures}
    if mapping.mode == "dropbox":
        waiting = {p for p in waiting if not is_sidecar(mapping.local_root, p)}
    return len(waiting)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value

"""Plain records the ledger hands out, so callers never hold SQLAlchemy objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EntryRecord:
    """A file or directory as both sides last agreed on it."""

    rel_path: str
    kind: str
    folder_id: int | None
    asset_id: int | None
    remote_name: str | None
    size: int | None
    mtime_ns: int | None
    inode: int | None
    checksum: str | None
    remote_updated_at: datetime | None = None
    origin: str = "local"


@dataclass(frozen=True)
class UploadRecord:
    """An upload in flight and how far it got."""

    upload_id: int
    mapping_id: int
    rel_path: str
    kind: str
    folder_id: int
    remote_name: str
    asset_id: int | None
    file_size: int
    mtime_ns: int
    inode: int
    part_size: int | None
    part_count: int | None
    state: str
    checksum: str | None
    owner: str
    lease_expires_at: datetime
    confirmed_parts: dict[int, str]
    started_at: datetime | None = None


@dataclass(frozen=True)
class UploadStart:
    """What the ledger needs to know when an upload begins."""

    rel_path: str
    kind: str
    folder_id: int
    remote_name: str
    asset_id: int | None
    file_size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class FailureRecord:
    """The latest failure of one entry."""

    rel_path: str
    operation: str
    reason: str
    permanent: bool
    first_seen: datetime
    last_seen: datetime
    count: int


@dataclass(frozen=True)
class PassSummary:
    """When a pass ran and how it ended."""

    kind: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    summary: str | None


@dataclass(frozen=True)
class AgentInfo:
    """A process registered on the ledger."""

    owner: str
    kind: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class ProxyFileRecord:
    """A proxy placed in a mirror, and the source version it was made from."""

    folder_id: int
    asset_id: int
    proxy_type: str
    rel_path: str
    source_checksum: str
    size: int

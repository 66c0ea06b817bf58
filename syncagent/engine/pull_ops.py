"""The operations a pull plan is made of, the plan that holds them, and the path
helpers the planner and the executors share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder
from syncagent.engine.scanner import LocalFile
from syncagent.ledger.records import EntryRecord

# (folder_id, asset_id); a folder itself is withheld as (folder_id, 0).
AssetKey = tuple[int, int]


class Stat(Protocol):
    """What the ledger keeps of a local file's stat (a LocalFile, an Identity)."""

    @property
    def size(self) -> int: ...

    @property
    def mtime_ns(self) -> int: ...

    @property
    def inode(self) -> int: ...


def file_entry(
    rel_path: str, asset: RemoteAsset, local: Stat, origin: str
) -> EntryRecord:
    """The entry of a local file that holds an asset's bytes: its stat, which the
    upload pass compares, and Compass's checksum, so neither side sees a change."""
    return EntryRecord(
        rel_path=rel_path,
        kind="file",
        folder_id=asset.folder_id,
        asset_id=asset.asset_id,
        remote_name=asset.name,
        size=local.size,
        mtime_ns=local.mtime_ns,
        inode=local.inode,
        checksum=asset.checksum,
        remote_updated_at=asset.updated_at,
        origin=origin,
    )


@dataclass(frozen=True)
class PullOptions:
    """The mapping settings a pull plan depends on."""

    two_way: bool = False
    trash_removed: bool = True
    remove_local_deletes: bool = False
    restore_archived: bool = False
    proxies_only: bool = False


@dataclass(frozen=True)
class MakeDir:
    """Make (or adopt) the local directory of a remote folder and record it."""

    rel_path: str
    folder: RemoteFolder
    forget: str | None = None


@dataclass(frozen=True)
class MoveDir:
    """Move the directory of a renamed or moved folder, with all it holds."""

    old_rel_path: str
    rel_path: str
    folder: RemoteFolder


@dataclass(frozen=True)
class Fetch:
    """Download an asset's file to `rel_path`.

    `expect` is set when a synced local file is replaced (a new revision): it must
    still match that entry's stat, or it is an unsynced change and is kept.
    `forget` names an older entry of the same asset to drop once recorded.
    """

    rel_path: str
    asset: RemoteAsset
    kind: str  # 'new', 'revision' or 'restore'
    expect: EntryRecord | None = None
    forget: str | None = None


@dataclass(frozen=True)
class Move:
    """Move a synced file to the path its renamed or moved asset now maps to."""

    old_rel_path: str
    entry: EntryRecord


@dataclass(frozen=True)
class Record:
    """Write an entry without touching the disk (both sides already agree)."""

    entry: EntryRecord
    forget: str | None = None
    adopted: bool = False
    """A local file of unknown origin found holding the asset's bytes (a lost
    ledger, a seeded mirror), counted as adopted."""


@dataclass(frozen=True)
class Conflict:
    """Both sides changed: save the remote version beside the local file."""

    rel_path: str
    asset: RemoteAsset
    entry: EntryRecord


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not a failure (archived, kept, ...)."""

    subject: str
    reason: str


@dataclass
class PullPlan:
    """What one pull must do, in the order the pass carries it out."""

    dirs: list[MakeDir | MoveDir] = field(default_factory=list)
    trash: list[EntryRecord] = field(default_factory=list)
    forgets: list[EntryRecord] = field(default_factory=list)
    withholds: list[EntryRecord] = field(default_factory=list)
    withheld_dirs: list[tuple[RemoteFolder, str]] = field(default_factory=list)
    released: list[AssetKey] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    dir_removals: list[EntryRecord] = field(default_factory=list)
    restores: list[RemoteAsset] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    needs_hash: list[str] = field(default_factory=list)
    placements: dict[AssetKey, tuple[str, RemoteAsset]] = field(default_factory=dict)
    no_download: set[int] = field(default_factory=set)
    """Folders the user may see but not download from: their proxies wait too."""
    unchanged: int = 0


def parent_of(rel_path: str) -> str:
    """The relative directory holding a path ('' for the root)."""
    return rel_path.rpartition("/")[0]


def join(rel_dir: str, name: str) -> str:
    """A path below a relative directory ('' for the root)."""
    return f"{rel_dir}/{name}" if rel_dir else name


def same_stat(local: LocalFile | None, entry: EntryRecord) -> bool:
    """Whether a local file is as the entry recorded it (size, mtime and inode)."""
    return local is not None and (local.size, local.mtime_ns, local.inode) == (
        entry.size,
        entry.mtime_ns,
        entry.inode,
    )


def key_of(asset: RemoteAsset) -> AssetKey:
    """An asset's key: its folder and its ID."""
    return (asset.folder_id, asset.asset_id)

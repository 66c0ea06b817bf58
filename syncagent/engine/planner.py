"""Plan an upload pass: compare the local tree with the synced tree, emit operations.

A pure function of its inputs — no network, disk or clock — so every decision can be
tested with lists in and operations out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from syncagent.engine.scanner import LocalFile, LocalTree
from syncagent.ledger.records import EntryRecord


@dataclass(frozen=True)
class Rename:
    """A synced file that now lives under another path, unchanged."""

    entry: EntryRecord
    local: LocalFile


@dataclass
class UploadPlan:
    """What one upload pass must do, by kind of operation."""

    folders: list[str] = field(default_factory=list)
    uploads: list[LocalFile] = field(default_factory=list)
    revisions: list[tuple[LocalFile, EntryRecord]] = field(default_factory=list)
    checks: list[tuple[LocalFile, EntryRecord]] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    moved: list[Rename] = field(default_factory=list)
    """Moves a crash cut short: the file is synced under its new path as a new asset,
    and the old asset, still in Compass, is what is left to remove."""
    forgets: list[EntryRecord] = field(default_factory=list)
    removals: list[EntryRecord] = field(default_factory=list)
    replaced: list[EntryRecord] = field(default_factory=list)
    """Entries whose path now holds the other kind (a file where a folder was, or a
    folder where a file was): settled before anything else takes the path."""
    twins: dict[str, EntryRecord] = field(default_factory=dict)
    """New files (by path) with the identity of a synced file the scan also saw: a
    hard link, or a file renamed while the scan ran, seen under both names."""
    unchanged: int = 0

    @property
    def idle(self) -> bool:
        """Whether the pass has nothing to do."""
        return not (
            self.folders
            or self.uploads
            or self.revisions
            or self.checks
            or self.renames
            or self.moved
            or self.forgets
            or self.removals
            or self.replaced
        )


def parent_of(rel_path: str) -> str:
    """The relative directory holding a path ('' for the root)."""
    return rel_path.rsplit("/", 1)[0] if "/" in rel_path else ""


def plan_upload_pass(
    local: LocalTree,
    synced: Mapping[str, EntryRecord],
    in_flight: Collection[str] = (),
    *,
    remove_deleted: bool = False,
) -> UploadPlan:
    """Decide what to upload, revise, check, rename and forget.

    `in_flight` paths have an upload under way and are left to it. With
    `remove_deleted`, files deleted locally are removed from Compass too; otherwise
    the ledger just forgets them.
    """
    plan = UploadPlan()
    plan.replaced = [
        entry
        for rel_path, entry in synced.items()
        if rel_path
        and rel_path not in in_flight
        and (
            (entry.kind == "dir" and rel_path in local.files)
            or (entry.kind == "file" and rel_path in local.dirs)
        )
    ]
    replaced = {e.rel_path for e in plan.replaced}
    plan.folders = _folders_to_make(local, synced, replaced)

    # Files that are known: unchanged, changed, or replaced by another inode.
    new_files: list[LocalFile] = []
    # Only what moves is sorted (below): sorting a large unchanged tree costs more
    # than the rest of a pass with nothing to do.
    for rel_path, found in local.files.items():
        if rel_path in in_flight:
            continue
        entry = synced.get(rel_path)
        if entry is None or entry.kind != "file":
            new_files.append(found)
        elif entry.size != found.size:
            plan.revisions.append((found, entry))
        elif entry.mtime_ns != found.mtime_ns or entry.inode != found.inode:
            plan.checks.append((found, entry))
        else:
            plan.unchanged += 1

    # Synced files that are gone: some were renamed, the rest were deleted. A file
    # the scan did not see (below a folder it could not list, or gone while it
    # looked) is unknown, not gone; one that vanished while the scan looked and is
    # found under a new path was renamed.
    missing = [
        entry
        for rel_path, entry in synced.items()
        if entry.kind == "file"
        and rel_path not in local.files
        and rel_path not in in_flight
        and rel_path not in replaced
    ]
    gone = [e for e in missing if local.sees(e.rel_path)]
    by_identity = {
        _identity(e): e
        for e in missing
        if e.asset_id and (local.sees(e.rel_path) or local.may_have_moved(e.rel_path))
    }
    new_files.sort(key=_by_path)
    present = _present_by_identity(local, synced) if new_files else {}
    for found in new_files:
        identity = _identity(found)
        moved = by_identity.pop(identity, None)
        if moved is not None:
            plan.renames.append(Rename(moved, found))
            continue
        plan.uploads.append(found)
        twin = present.get(identity)
        if twin is not None:
            plan.twins[found.rel_path] = twin
    plan.revisions.sort(key=lambda pair: pair[0].rel_path)
    plan.checks.sort(key=lambda pair: pair[0].rel_path)
    renamed = {r.entry.rel_path for r in plan.renames}
    unmatched = [e for e in gone if e.rel_path not in renamed]
    held = _moves_cut_short(plan, unmatched, local, synced, in_flight)
    deleted = [e for e in unmatched if e.rel_path not in held]
    if remove_deleted:
        plan.removals = deleted
    else:
        plan.forgets = deleted

    # Directories gone locally are forgotten; Compass folders are never deleted.
    plan.forgets.extend(
        entry
        for rel_path, entry in synced.items()
        if entry.kind == "dir"
        and rel_path
        and rel_path not in local.dirs
        and rel_path not in replaced
        and local.sees(rel_path)
    )
    return plan


def confirm_deleted(
    plan: UploadPlan, first_look: LocalTree, second_look: LocalTree
) -> list[EntryRecord]:
    """Keep as deleted only the files a second scan also finds gone; return the
    others, taken out of the plan.

    A scan is no snapshot: a file renamed while it runs (and again, a -> a.x -> b,
    as bulk renamers and scripts do) can be missed under both names, and would be
    taken for deleted (its asset forgotten, or removed from Compass) and then come
    back as a new upload. A file the second scan finds, under its name or another
    with its identity (inode, size, mtime), or cannot see, is left for the next pass,
    which finds it renamed. Only files new to the second look count by identity: one
    the first scan saw was weighed by the plan already (a new file on a reused inode
    is no rename).
    """
    identities = {
        _identity(f)
        for rel_path, f in second_look.files.items()
        if rel_path not in first_look.files
    }

    def still_gone(entry: EntryRecord) -> bool:
        if entry.kind != "file":
            return True
        return (
            entry.rel_path not in second_look.files
            and _identity(entry) not in identities
            and second_look.sees(entry.rel_path)
            and not second_look.may_have_moved(entry.rel_path)
        )

    held = [e for e in [*plan.forgets, *plan.removals] if not still_gone(e)]
    plan.forgets = [e for e in plan.forgets if still_gone(e)]
    plan.removals = [e for e in plan.removals if still_gone(e)]
    return held


def _present_by_identity(
    local: LocalTree, synced: Mapping[str, EntryRecord]
) -> dict[FileIdentity, EntryRecord]:
    """Synced files the scan saw in place, by identity (inode, size, mtime)."""
    return {
        _identity(e): e
        for rel_path, e in synced.items()
        if e.kind == "file" and rel_path in local.files and e.inode is not None
    }


def _folders_to_make(
    local: LocalTree, synced: Mapping[str, EntryRecord], replaced: Collection[str]
) -> list[str]:
    """New directories that hold a file to sync, at any depth, parents first.

    A directory with nothing to upload (empty, or every file in it left out by the
    filters) gets no Compass folder: Compass has no call to rename or delete a
    folder, so one made for a folder that is renamed a moment later ("New folder")
    or never filled would stay there, empty, for good.
    """
    new_dirs = {d for d in local.dirs if d not in synced or d in replaced}
    if not new_dirs:
        return []
    holding: set[str] = set()
    for rel_path in local.files:
        rel_dir = parent_of(rel_path)
        # Stop at the first folder already known to hold a file: its parents are too.
        while rel_dir and rel_dir not in holding:
            holding.add(rel_dir)
            rel_dir = parent_of(rel_dir)
    return sorted(new_dirs & holding, key=lambda d: (d.count("/"), d))


def _moves_cut_short(
    plan: UploadPlan,
    gone: list[EntryRecord],
    local: LocalTree,
    synced: Mapping[str, EntryRecord],
    in_flight: Collection[str],
) -> set[str]:
    """Find the gone entries whose file moved in a run that stopped before the move
    ended; their paths, which are neither forgotten nor removed as deletes.

    A move uploads the file anew, then removes (or, keeping assets, forgets) the old
    one. Stopped in between, the file is in flight or synced under its new path
    (same inode, size and mtime, same content) while its old entry is gone. One
    still in flight keeps its old entry until it is verified; one already synced has
    its move finished now. Two hard links of one file, both synced, then one
    deleted, look the same; that delete is then counted as a move finished, and its
    asset goes the way on_local_delete says a deleted file's goes.
    """
    wanted = {_identity(e): e for e in gone if e.asset_id}
    if not wanted:
        return set()
    held: set[str] = set()
    for rel_path, found in local.files.items():
        old = wanted.get(_identity(found))
        if old is None:
            continue
        if rel_path in in_flight:
            held.add(old.rel_path)
            continue
        entry = synced.get(rel_path)
        if (
            entry is not None
            and entry.kind == "file"
            and entry.asset_id not in (None, old.asset_id)
            and _identity(entry) == _identity(found)
            and entry.checksum is not None
            and entry.checksum == old.checksum
        ):
            plan.moved.append(Rename(old, found))
            held.add(old.rel_path)
    return held


def _by_path(found: LocalFile) -> str:
    return found.rel_path


FileIdentity = tuple[int | None, int | None, int | None]
"""What a rename keeps: inode, size and modification time."""


def _identity(file: LocalFile | EntryRecord) -> FileIdentity:
    return (file.inode, file.size, file.mtime_ns)

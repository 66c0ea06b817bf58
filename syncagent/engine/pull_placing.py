"""Placing remote folders and assets in a pull plan: directories made, moved or kept;
files fetched, moved, recorded, or saved beside a local change as a conflict copy."""

from __future__ import annotations

from dataclasses import replace

from syncagent.engine.pull_ops import (
    Conflict,
    Fetch,
    MakeDir,
    Move,
    MoveDir,
    Notice,
    Record,
    file_entry,
    join,
    key_of,
    parent_of,
    same_stat,
)
from syncagent.engine.pull_state import PlannerState
from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder
from syncagent.engine.scanner import LocalFile
from syncagent.ledger.records import EntryRecord


class PlacingSteps(PlannerState):
    """Decides what the pull does with each remote folder and asset at its path."""

    # -- folders --------------------------------------------------------------------

    def _place_folder(self, folder: RemoteFolder, target: str) -> bool:
        """Plan a folder's directory; True if its subtree is to be skipped."""
        entry = self.dir_entries.get(folder.folder_id)
        if self.rules.excludes(target):
            if entry is not None:
                self.plan.forgets.append(entry)
            return True
        if entry is not None and entry.rel_path in self.local.dirs:
            return self._keep_folder(folder, entry, target)
        if entry is not None and self.options.two_way:
            # The directory was deleted here: keep that, and leave Compass as is.
            self.plan.withheld_dirs.append((folder, entry.rel_path))
            return True
        existing = self._existing_dir(target)
        key = (folder.folder_id, 0)
        if key in self.withheld:
            if existing is None:
                return True
            self._release_subtree(folder.folder_id)
        self.origin[target] = existing
        forget = self._translated(entry.rel_path) if entry is not None else None
        self.plan.dirs.append(MakeDir(target, folder, forget))
        return False

    def _release_subtree(self, folder_id: int) -> None:
        """A withheld folder's directory was made again here: fill it again."""
        below = {folder_id}
        pending = [folder_id]
        while pending:
            children = self.remote.children(pending.pop())
            below.update(f.folder_id for f in children)
            pending.extend(f.folder_id for f in children)
        for key in [k for k in self.withheld if k[0] in below]:
            del self.withheld[key]
            self.plan.released.append(key)

    def _existing_dir(self, target: str) -> str | None:
        """The directory on disk (before this pass) that `target` would adopt."""
        parent_origin = self.origin.get(parent_of(target))
        if parent_origin is None:
            return None
        candidate = join(parent_origin, target.rpartition("/")[2])
        return candidate if candidate in self.local.dirs else None

    def _keep_folder(
        self, folder: RemoteFolder, entry: EntryRecord, target: str
    ) -> bool:
        current = self._translated(entry.rel_path)
        if current != target:
            self.plan.dirs.append(MoveDir(current, target, folder))
            self.moved.append((current, target))
        elif entry.remote_name != folder.name:
            self.plan.dirs.append(MakeDir(target, folder))
        self.origin[target] = entry.rel_path
        return False

    # -- assets ---------------------------------------------------------------------

    def _place_asset(self, asset: RemoteAsset, target: str) -> None:
        key = key_of(asset)
        entry = self.asset_entries.get(key)
        if entry is None:
            self._place_new(asset, target)
            return
        if self._left_out(target):
            if self.options.two_way and not self._left_out(entry.rel_path):
                # Forgotten, the file here would go up again as a second asset.
                self._keep_bound(asset, entry)
                return
            self.plan.forgets.append(entry)
            return
        if asset.ready:
            self.plan.placements[key] = (target, asset)
        if asset.asset_id in self.in_flight or not asset.ready:
            self.plan.unchanged += 1
            return
        local = self.local.files.get(entry.rel_path)
        if local is None:
            self._place_missing(asset, entry, target)
        else:
            self._place_present(asset, entry, local, target)

    def _left_out(self, rel_path: str) -> bool:
        """Whether the mapping's filters leave a file at `rel_path` out."""
        return self.rules.excludes(rel_path) or not self.rules.includes_file(rel_path)

    def _keep_bound(self, asset: RemoteAsset, entry: EntryRecord) -> None:
        """An asset renamed in Compass to a name the two-way mapping leaves out: the
        file here keeps its name and stays the asset's."""
        reason = (
            f"renamed in Compass to {asset.name!r}, which this mapping leaves out; "
            f"the file here keeps its name and stays bound to asset {asset.asset_id}"
        )
        self.plan.notices.append(Notice(entry.rel_path, reason))
        self.plan.unchanged += 1

    def _place_new(self, asset: RemoteAsset, target: str) -> None:
        key = key_of(asset)
        if asset.asset_id in self.in_flight or not asset.ready:
            return
        if self._left_out(target):
            return
        withheld = self.withheld.get(key, "")
        if withheld == asset.checksum:
            return
        if withheld != "":
            self.plan.released.append(key)
        self.plan.placements[key] = (target, asset)
        local = self.adopted.get(key)
        if local is not None:
            entry = file_entry(target, asset, local, "remote")
            self.plan.records.append(Record(entry, adopted=True))
            return
        self._fetch(Fetch(target, asset, "new"))

    def _place_missing(
        self, asset: RemoteAsset, entry: EntryRecord, target: str
    ) -> None:
        """The synced file is gone here: bring it back, or keep the deletion."""
        forget = entry.rel_path if entry.rel_path != target else None
        changed = asset.checksum != entry.checksum
        renamed_to = self._renamed_here(entry) if self.options.two_way else None
        if renamed_to is not None and not changed:
            # Renamed (or moved) here: the upload pass carries that to the asset.
            self.plan.unchanged += 1
            self.plan.placements.pop(key_of(asset), None)
            if target != entry.rel_path:
                self.plan.notices.append(
                    Notice(
                        renamed_to,
                        f"renamed here (from {entry.rel_path}) and in Compass (to "
                        f"{asset.name}); the name given here wins",
                    )
                )
            return
        if changed or not self.options.two_way:
            self._fetch(Fetch(target, asset, "restore", forget=forget))
        elif self.options.remove_local_deletes:
            self.plan.unchanged += 1  # the upload pass removes it from Compass
        else:
            self.plan.withholds.append(entry)
            self.plan.placements.pop(key_of(asset), None)

    def _renamed_here(self, entry: EntryRecord) -> str | None:
        """The path an entry's file has now, when it was renamed or moved here: a
        file the ledger does not know, with the entry's inode, size and mtime."""
        if self._unknown_by_identity is None:
            self._unknown_by_identity = {
                (f.inode, f.size, f.mtime_ns): path
                for path, f in self.local.files.items()
                if path not in self.synced
            }
        if entry.inode is None or entry.size is None or entry.mtime_ns is None:
            return None
        return self._unknown_by_identity.get((entry.inode, entry.size, entry.mtime_ns))

    def _place_present(
        self,
        asset: RemoteAsset,
        entry: EntryRecord,
        local: LocalFile,
        target: str,
    ) -> None:
        current = self._translated(entry.rel_path)
        moved = replace(
            entry, rel_path=target, remote_name=asset.name, folder_id=asset.folder_id
        )
        if current != target:
            self.plan.moves.append(Move(entry.rel_path, moved))
        if asset.checksum == entry.checksum:
            if current == target and entry.remote_name != asset.name:
                self.plan.records.append(Record(moved))
            elif current == target:
                self.plan.unchanged += 1
            return
        self._remote_changed(asset, moved, local)

    def _remote_changed(
        self, asset: RemoteAsset, entry: EntryRecord, local: LocalFile
    ) -> None:
        """A new revision in Compass: replace the file unless it changed here too."""
        content = self.local_md5.get(local.rel_path)
        if same_stat(local, entry) or content == entry.checksum:
            self._fetch(Fetch(entry.rel_path, asset, "revision", expect=entry))
        elif content is None:
            self.plan.needs_hash.append(local.rel_path)
        elif content == asset.checksum:
            self.plan.records.append(Record(_agreed(entry, asset, local)))
        else:
            agreed = replace(
                entry, checksum=asset.checksum, remote_updated_at=asset.updated_at
            )
            self._conflict(Conflict(entry.rel_path, asset, agreed))

    def _fetch(self, fetch: Fetch) -> None:
        """Download, unless the asset is archived or its folder refuses downloads."""
        if self._may_download(fetch.asset, fetch.rel_path):
            self.plan.fetches.append(fetch)

    def _conflict(self, conflict: Conflict) -> None:
        if self._may_download(conflict.asset, conflict.rel_path):
            self.plan.conflicts.append(conflict)

    def _may_download(self, asset: RemoteAsset, rel_path: str) -> bool:
        if not self.remote.folders[asset.folder_id].downloadable:
            reason = f"asset {asset.asset_id}: no download permission on its folder"
            self.plan.notices.append(Notice(rel_path, reason))
            return False
        if asset.archived:
            self._archived(asset, rel_path)
            return False
        return True

    def _archived(self, asset: RemoteAsset, rel_path: str) -> None:
        if asset.restoring:
            # Asked again, Compass would start another restore job of it.
            reason = "archived in Compass; being restored, pulled once restored"
        elif self.options.restore_archived:
            self.plan.restores.append(asset)
            reason = "archived in Compass; restore asked, pulled once restored"
        else:
            reason = (
                "archived in Compass; skipped (restore_archived = true restores it)"
            )
        self.plan.notices.append(Notice(rel_path, f"asset {asset.asset_id} {reason}"))


def _agreed(entry: EntryRecord, asset: RemoteAsset, local: LocalFile) -> EntryRecord:
    """Both sides hold the same new content: record it as synced."""
    return replace(
        entry,
        size=local.size,
        mtime_ns=local.mtime_ns,
        inode=local.inode,
        checksum=asset.checksum,
        remote_updated_at=asset.updated_at,
    )

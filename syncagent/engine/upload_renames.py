"""Renames and deletions in an upload pass: true renames told from new files, assets
renamed in place, and what is gone here removed from Compass or forgotten."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath

from syncagent.compass import AssetUpdate, AuthenticationFailed, CompassError, NotFound
from syncagent.engine.folders import FolderMap
from syncagent.engine.planner import Rename, UploadPlan, confirm_deleted, parent_of
from syncagent.engine.scanner import scan_tree
from syncagent.engine.upload_files import FileSteps
from syncagent.ledger import EntryRecord

log = logging.getLogger(__name__)


class RenameSteps(FileSteps):
    """Carries renames, moves and deletions of local files over to Compass."""

    def _true_renames(self, plan: UploadPlan) -> list[Rename]:
        """The renames of the plan that are renames; the others become a deleted
        file and a new one.

        A rename is known by inode, size and mtime. A new file can take a deleted
        one's inode; with nanosecond times it never also has its mtime, but a copy
        that sets whole-second times (cp -p, tar, unzip) can have both: such a file
        is read, and is a rename only if it holds the bytes synced before.
        """
        kept: list[Rename] = []
        for rename in plan.renames:
            if rename.local.mtime_ns % 1_000_000_000 or self._same_bytes(rename):
                kept.append(rename)
                continue
            log.info(
                "%s: has the inode, size and time of %s but other bytes: a new file",
                rename.local.rel_path,
                rename.entry.rel_path,
            )
            plan.uploads.append(rename.local)
            if self.mapping.on_local_delete == "remove":
                plan.removals.append(rename.entry)
            else:
                plan.forgets.append(rename.entry)
        plan.renames = kept
        return kept

    def _same_bytes(self, rename: Rename) -> bool:
        try:
            checksum, _, _ = self._read_md5(rename.local.rel_path)
        except OSError:
            return True  # gone or unreadable: the rename step says so
        return checksum == rename.entry.checksum

    def _rename_in_place(self, folders: FolderMap, rename: Rename) -> bool:
        """Rename the asset when only the file's name changed; False if it moved."""
        old = PurePosixPath(rename.entry.rel_path)
        new = PurePosixPath(rename.local.rel_path)
        new_folder = folders.folder_of(parent_of(rename.local.rel_path))
        if (
            new_folder != rename.entry.folder_id
            or old.suffix.lower() != new.suffix.lower()
        ):
            # Compass has no move, and a rename must keep the extension: upload the
            # file anew and remove the old asset once the new one is verified.
            self._moves.append(rename)
            return False
        assert rename.entry.asset_id is not None
        try:
            if self._gone_from_folder(rename.entry):
                # Nothing left to rename: the file goes up as a new asset.
                self.ledger.remove_entries(self.mapping_id, [rename.entry.rel_path])
                return False
            self.client.update_assets(
                [AssetUpdate(rename.entry.asset_id, name=new.name)]
            )
        except AuthenticationFailed:
            raise
        except CompassError as exc:
            self._failed(rename.local.rel_path, f"cannot rename the asset: {exc}", exc)
            return True
        self.ledger.remove_entries(self.mapping_id, [rename.entry.rel_path])
        self.ledger.put_entry(
            self.mapping_id,
            replace(
                rename.entry,
                rel_path=rename.local.rel_path,
                remote_name=new.name,
                size=rename.local.size,
                mtime_ns=rename.local.mtime_ns,
                inode=rename.local.inode,
            ),
        )
        self.report.count("renamed")
        log.info("%s: renamed from %s", rename.local.rel_path, rename.entry.rel_path)
        return True

    def _gone_from_folder(self, entry: EntryRecord) -> bool:
        """Whether the entry's asset was deleted, or taken out of its folder."""
        assert entry.asset_id is not None
        try:
            asset = self.client.get_asset(entry.asset_id)
        except NotFound:
            return True
        return entry.folder_id not in asset.folder_ids

    def _settle_deleted(self, plan: UploadPlan) -> None:
        # Moves: the file went up anew under its new path (Compass cannot move an
        # asset, nor change its extension). Checked against this pass's verified
        # uploads, not the ledger: a drop box moves a verified file on to done/ and
        # forgets its entry.
        moves = [
            (r.entry, f"the file moved to {r.local.rel_path}")
            for r in self._moves
            if r.local.rel_path in self._verified
        ]
        moves += [
            (r.entry, f"the file moved to {r.local.rel_path} (finishing the move)")
            for r in plan.moved
        ]
        for entry, why in moves:
            if self.mapping.on_local_delete == "remove":
                self._remove_remote([entry], "moved", why)
            else:
                # The old asset keeps its revisions and metadata in Compass.
                self._forget([entry], why)

        # Deletions: forgotten, or removed from Compass when the mapping says so,
        # once a second look agrees that they are gone.
        self._look_again(plan)
        self._remove_remote(plan.removals, "removed", "the file was deleted here")
        self._forget(plan.forgets, "the file was deleted here")

    def _forget(self, entries: Sequence[EntryRecord], why: str) -> None:
        """Forget entries whose assets stay in Compass (on_local_delete = "keep")."""
        if self.mapping.downloads:
            # Two-way: remember the delete, or the next pull brings the file back.
            for entry in entries:
                self.ledger.withhold(
                    self.mapping_id, entry, folder_only=entry.kind == "dir"
                )
        else:
            self.ledger.remove_entries(self.mapping_id, [e.rel_path for e in entries])
        files = [e for e in entries if e.kind == "file"]
        for entry in files:
            log.info(
                "%s: %s; its asset %s stays in Compass",
                entry.rel_path,
                why,
                entry.asset_id,
            )
        self.report.count("forgotten", len(files))

    def _look_again(self, plan: UploadPlan) -> None:
        """Scan again before acting on files the first scan found gone: one renamed
        while it ran can be missed under both names (see planner.confirm_deleted)."""
        if not any(e.kind == "file" for e in [*plan.forgets, *plan.removals]):
            return
        second_look = scan_tree(self.root, self.rules)
        for entry in confirm_deleted(plan, self._first_look, second_look):
            reason = (
                "missed by the scan but still here, maybe under another name "
                "(renamed while the scan ran?); left for the next pass"
            )
            self._left_for_next_pass(entry.rel_path, reason)

    def _settle_replaced(self, replaced: Sequence[EntryRecord]) -> None:
        """A file became a folder or a folder a file: the old entry goes first (its
        asset too, for a file, when local deletes reach Compass)."""
        if not replaced:
            return
        files = [e for e in replaced if e.kind == "file"]
        if self.mapping.on_local_delete == "remove":
            self._remove_remote(files, "removed", "a folder took the file's place")
        else:
            self.report.count("forgotten", len(files))  # their assets stay in Compass
        self.ledger.remove_entries(self.mapping_id, [e.rel_path for e in replaced])

    def _remove_remote(
        self, entries: Sequence[EntryRecord], counter: str, why: str
    ) -> None:
        for entry in entries:
            if entry.asset_id is None or entry.folder_id is None:
                continue
            try:
                self.client.delete_from_folders({entry.asset_id: [entry.folder_id]})
            except NotFound:
                # Someone removed it in Compass first: nothing left to remove.
                self.ledger.remove_entries(self.mapping_id, [entry.rel_path])
                self.report.count("forgotten")
                log.info(
                    "%s: %s; its asset %d was already gone from Compass",
                    entry.rel_path,
                    why,
                    entry.asset_id,
                )
                continue
            except AuthenticationFailed:
                raise
            except CompassError as exc:
                self._failed(entry.rel_path, f"cannot remove the asset: {exc}", exc)
                continue
            self.ledger.remove_entries(self.mapping_id, [entry.rel_path])
            self.report.count(counter)
            log.info(
                "%s: %s; its asset %d removed from Compass folder %d",
                entry.rel_path,
                why,
                entry.asset_id,
                entry.folder_id,
            )

    def _spare_excluded(self, plan: UploadPlan) -> None:
        """Files that are out of the scan because the filters now leave them out
        were not deleted: their assets stay in Compass, whatever on_local_delete
        says; the ledger only forgets them."""
        spared = [e for e in plan.removals if not self.rules.covers(e.rel_path)]
        if not spared:
            return
        plan.removals = [e for e in plan.removals if self.rules.covers(e.rel_path)]
        plan.forgets.extend(spared)
        for entry in spared:
            log.info(
                "%s: now left out by the mapping's filters; forgotten, its asset "
                "stays in Compass",
                entry.rel_path,
            )

"""Carry out the operations of a pull plan on disk, then record them in the ledger.

Each method does one operation for one path: the disk first (through SafeRoot, so
never outside the root or through a link), the ledger only once the disk is right.
Errors are raised to the pass, which records them per path.
"""

from __future__ import annotations

import logging
import stat
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime

from syncagent.compass import CompassClient
from syncagent.engine.download import Downloader, Expected, Fetched, source_key
from syncagent.engine.layout import conflict_name, trash_rel_path, trash_tag
from syncagent.engine.names import tagged
from syncagent.engine.pull_ops import (
    Conflict,
    Fetch,
    MakeDir,
    Move,
    MoveDir,
    file_entry,
    join,
    parent_of,
)
from syncagent.engine.pull_report import PullReport
from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder
from syncagent.engine.safe_root import (
    Identity,
    LocalChanged,
    Occupied,
    SafeRoot,
    UnsafePath,
)
from syncagent.ledger import EntryRecord, Ledger

log = logging.getLogger(__name__)

MAX_NAME_TRIES = 50
_COUNTER_OF_KIND = {"new": "downloaded", "revision": "updated", "restore": "restored"}


def dir_entry(rel_path: str, folder: RemoteFolder) -> EntryRecord:
    """The ledger entry of a directory mirroring a remote folder."""
    return EntryRecord(
        rel_path=rel_path,
        kind="dir",
        folder_id=folder.folder_id,
        asset_id=None,
        remote_name=folder.name,
        size=None,
        mtime_ns=None,
        inode=None,
        checksum=None,
        origin="remote",
    )


class PullApplier:
    """Applies a pull's operations for one mapping."""

    def __init__(
        self,
        *,
        root: SafeRoot,
        client: CompassClient,
        ledger: Ledger,
        mapping_id: int,
        downloader: Downloader,
        report: PullReport,
    ) -> None:
        self.root = root
        self.client = client
        self.ledger = ledger
        self.mapping_id = mapping_id
        self.downloader = downloader
        self.report = report

    # -- folders ----------------------------------------------------------------

    def make_dir(self, op: MakeDir) -> None:
        """Make (or adopt) a folder's directory and record it."""
        existed = self.root.is_dir(op.rel_path)
        self.root.make_dir(op.rel_path)
        entry = dir_entry(op.rel_path, op.folder)
        if op.forget and op.forget != op.rel_path:
            self.ledger.rename_entry(self.mapping_id, op.forget, entry)
        else:
            self.ledger.put_entry(self.mapping_id, entry)
        if not existed:
            self.report.count("folders_created")
            log.info(
                "%s: folder made (Compass folder %d)", op.rel_path, op.folder.folder_id
            )

    def move_dir(self, op: MoveDir) -> None:
        """Move a renamed or moved folder's directory, with everything below it."""
        self.root.move_dir(op.old_rel_path, op.rel_path)
        self.ledger.move_entries(self.mapping_id, op.old_rel_path, op.rel_path)
        self.ledger.put_entry(self.mapping_id, dir_entry(op.rel_path, op.folder))
        self.report.count("folders_moved")
        log.info("%s: folder moved from %s", op.rel_path, op.old_rel_path)

    def remove_dir(self, entry: EntryRecord) -> None:
        """A folder removed in Compass: its directory goes once empty."""
        if self.root.remove_empty_dir(entry.rel_path):
            self.report.count("folders_removed")
        else:
            reason = "folder removed in Compass; kept here because it still holds files"
            self.report.notice(entry.rel_path, reason)
            log.info("%s: %s", entry.rel_path, reason)
        self.ledger.remove_entries(self.mapping_id, [entry.rel_path])

    # -- removals ---------------------------------------------------------------

    def trash(self, entry: EntryRecord, now: datetime) -> None:
        """Move a file whose asset Compass removed into the trash folder."""
        try:
            moved_to = self._to_trash(entry, now)
        except LocalChanged:
            reason = "removed in Compass but changed here; kept"
            self.report.notice(entry.rel_path, reason)
            log.info("%s: %s", entry.rel_path, reason)
            moved_to = None
        except FileNotFoundError:
            moved_to = None
        self.ledger.remove_entries(self.mapping_id, [entry.rel_path])
        if moved_to is not None:
            self.report.count("trashed")
            # A listing cannot tell a removed asset from one this user may no
            # longer see (a folder's view permission withdrawn): say both.
            log.info(
                "%s: no longer in Compass for this user (removed, or no longer "
                "visible); moved to %s",
                entry.rel_path,
                moved_to,
            )

    def _to_trash(self, entry: EntryRecord, now: datetime) -> str:
        first = trash_rel_path(entry.rel_path)
        tag = trash_tag(now, entry.asset_id)
        name = first.rpartition("/")[2]
        candidates = [first] + [
            f"{parent_of(first)}/{tagged(name, tag if n == 1 else f'{tag} {n}')}"
            for n in range(1, MAX_NAME_TRIES)
        ]
        for candidate in candidates:
            try:
                self.root.move_file(entry.rel_path, candidate, Identity.of_entry(entry))
                return candidate
            except Occupied:
                continue
        raise Occupied(first)

    # -- synced files -----------------------------------------------------------

    def move(self, op: Move) -> None:
        """Move a synced file to its asset's new path (a remote rename or move)."""
        try:
            self.root.move_file(op.old_rel_path, op.entry.rel_path)
        except FileNotFoundError:
            if self.root.identity(op.entry.rel_path) != Identity.of_entry(op.entry):
                raise
            # Moved already by a run that stopped before recording it.
        self.ledger.rename_entry(self.mapping_id, op.old_rel_path, op.entry)
        self.report.count("renamed")
        log.info(
            "%s: renamed from %s to follow Compass", op.entry.rel_path, op.old_rel_path
        )

    def fetch(self, op: Fetch) -> None:
        """Download an asset's file into place and record it."""
        started = time.monotonic()
        rel_dir, _, name = op.rel_path.rpartition("/")
        origin = op.expect.origin if op.expect is not None else "remote"
        with self._fetched(rel_dir, op.asset, op.rel_path) as got:
            # Noted before the rename, so that a run stopped right after it does
            # not leave a file of unknown origin (see placements.py).
            intended = file_entry(op.rel_path, op.asset, got.identity(), origin)
            self.ledger.intend_placement(self.mapping_id, intended, op.forget)
            try:
                placed = self._place(got, op, name)
            except BaseException:
                self.ledger.drop_placement(self.mapping_id, op.rel_path)
                raise
            if placed is None:
                self.ledger.drop_placement(self.mapping_id, op.rel_path)
                return
        entry = file_entry(op.rel_path, op.asset, placed, origin)
        self.ledger.record_placement(self.mapping_id, entry, op.forget)
        self.report.count(_COUNTER_OF_KIND[op.kind])
        seconds = time.monotonic() - started
        log.info(
            "%s: %s, %d bytes in %.2f s (asset %d%s)",
            op.rel_path,
            _COUNTER_OF_KIND[op.kind],
            placed.size,
            seconds,
            op.asset.asset_id,
            f", resumed at byte {got.resumed_at}" if got.resumed_at else "",
        )

    def _place(self, got: Fetched, op: Fetch, name: str) -> Identity | None:
        """Put a fetched file in place; None when it was kept beside a local file
        that changed meanwhile."""
        if op.expect is None:
            return _place_new(got, name, op.rel_path)
        try:
            return got.place_replacing(name, Identity.of_entry(op.expect))
        except LocalChanged:
            # It changed while the new version was coming: keep both.
            agreed = _with_remote_version(op.expect, op.asset)
            self._keep_both(got, op.rel_path, op.asset, agreed)
            return None

    def conflict(self, op: Conflict) -> None:
        """Both sides changed: save Compass's version beside the local file."""
        rel_dir = op.rel_path.rpartition("/")[0]
        with self._fetched(rel_dir, op.asset, op.rel_path) as got:
            self._keep_both(got, op.rel_path, op.asset, op.entry)

    def _keep_both(
        self, got: Fetched, rel_path: str, asset: RemoteAsset, agreed: EntryRecord
    ) -> None:
        name = rel_path.rpartition("/")[2]
        now = datetime.now(UTC)
        for number in range(1, MAX_NAME_TRIES):
            copy_name = conflict_name(name, now, asset.asset_id, number)
            try:
                got.place_new(copy_name)
                break
            except Occupied:
                continue
        else:
            raise Occupied(rel_path)
        # The entry takes Compass's checksum: the local file still differs from it,
        # so a two-way upload sends it as a revision, and no pull repeats the copy.
        self.ledger.put_entry(self.mapping_id, agreed)
        self.report.count("conflicts")
        copy_path = join(parent_of(rel_path), copy_name)
        reason = f"changed here and in Compass; Compass's version saved as {copy_path}"
        self.report.notice(rel_path, reason)
        log.warning("%s: conflict; %s", rel_path, reason)

    def _fetched(
        self, rel_dir: str, asset: RemoteAsset, subject: str
    ) -> AbstractContextManager[Fetched]:
        assert asset.checksum is not None
        return self.downloader.fetched(
            rel_dir,
            source_key(asset.asset_id, asset.checksum),
            lambda: self.client.download_url(asset_id=asset.asset_id),
            Expected(asset.checksum, asset.size),
            subject=subject,
            count_received=self._received,
        )

    def _received(self, count: int) -> None:
        """Bytes a download brought, counted whether or not it then failed."""
        self.report.count("bytes_received", count)


def _place_new(got: Fetched, name: str, rel_path: str) -> Identity:
    """Place a download under a free name; a link or a non-file there says so."""
    try:
        return got.place_new(name)
    except Occupied:
        st = got.directory.lstat(name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafePath(
                rel_path, f"{rel_path} is a symbolic link or not a regular file"
            ) from None
        raise


def _with_remote_version(entry: EntryRecord, asset: RemoteAsset) -> EntryRecord:
    return replace(
        entry,
        remote_name=asset.name,
        checksum=asset.checksum,
        remote_updated_at=asset.updated_at,
    )

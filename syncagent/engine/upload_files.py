"""The per-file steps of an upload pass: content checks, revisions and new files,
from creating their assets to carrying their uploads through."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from syncagent.compass import (
    AssetItem,
    AuthenticationFailed,
    CompassError,
    CompassUnreachable,
    NotFound,
    RequestRejected,
)
from syncagent.engine.adoption import Adopter
from syncagent.engine.folders import FolderMap
from syncagent.engine.hashing import md5_of_file
from syncagent.engine.hooks import AssetDescription
from syncagent.engine.planner import parent_of
from syncagent.engine.problems import FileProblem, FileVanished
from syncagent.engine.pull_ops import join
from syncagent.engine.scanner import LocalFile, stat_file
from syncagent.engine.upload import LEASE, Transferred
from syncagent.engine.upload_guard import FailureGuard
from syncagent.engine.writers import open_for_writing
from syncagent.ledger import EntryRecord, UploadRecord, UploadStart

log = logging.getLogger(__name__)

CREATE_BATCH = 50
# A file modified this recently may still be being written: look at it once more.
RECENT_SECONDS = 1.0


class FileSteps(FailureGuard):
    """Checks, revises and uploads files, each under the failure guard."""

    def _carry(self, upload: UploadRecord, resumed: bool = False) -> None:
        """Carry an upload through; `resumed` when a previous run left it."""
        self.uploader.carry(
            self.root,
            upload,
            self._describe_asset,
            self.stop,
            self._recorded,
            resumed=resumed,
        )

    def _recorded(self, done: Transferred, error: BaseException | None) -> None:
        """A verified upload's record is committed (or failed): on the ledger's
        thread, which `_join` waits for before the pass goes on."""
        self._run_guarded(done.rel_path, self._after_record, done, error)

    def _after_record(self, done: Transferred, error: BaseException | None) -> None:
        if error is not None:
            raise error
        with self._lock:
            self._verified.add(done.rel_path)
        outcome = "revised" if done.kind == "revision" else "uploaded"
        self.report.count(outcome)
        log.info(
            "%s: %s, %d bytes%s, asset %d",
            done.rel_path,
            outcome,
            done.size,
            _how_sent(done),
            done.asset_id,
        )
        self.progress.file_done(done.rel_path, outcome)
        self.hooks.synced(done.rel_path, done.asset_id)

    def _check(self, local: LocalFile, entry: EntryRecord) -> None:
        """Same size, new times: a touch is recorded, a change becomes a revision."""
        try:
            checksum, size, st = self._read_md5(local.rel_path)
        except FileNotFoundError:
            return
        if checksum != entry.checksum or size != entry.size:
            self._revise(local, entry)
            return
        if not local.held_still(st):
            return  # it moved again while hashed; the next pass looks again
        self.ledger.put_entry(self.mapping_id, _as_found(entry, local))
        self.report.count("touched")

    def _read_md5(self, rel_path: str) -> tuple[str, int, os.stat_result]:
        """A file's MD5 and size, and its stat as read (OSError if it cannot be)."""
        with open(self.root / rel_path, "rb") as stream:
            checksum, size = md5_of_file(stream)
            st = os.fstat(stream.fileno())
        self.uploader.counters.add(read=size)
        return checksum, size, st

    def _revise(self, local: LocalFile, entry: EntryRecord) -> None:
        current = self._settled(local)
        if current is None or entry.asset_id is None or entry.folder_id is None:
            return
        if self.mapping.downloads:
            asset = self._asset_in_folder(entry)
            if asset is not None and self._made_same_change(current, entry, asset):
                return
            waits_for_pull = _waits_for_pull(entry, asset, self.rules.includes_file)
            if waits_for_pull is not None:
                self.report.count("awaiting_pull")
                if self.watched:
                    # The agent runs that pull now, then this pass again: news.
                    log.info("%s: %s", current.rel_path, waits_for_pull)
                    return
                raise FileProblem(waits_for_pull, permanent=False)
        upload = self.ledger.begin_upload(
            self.mapping_id,
            rel_path=current.rel_path,
            kind="revision",
            folder_id=entry.folder_id,
            # The asset keeps its Compass name: a local name may have been made
            # safe for the disk (a pulled `what?.txt` is `what_.txt` here).
            remote_name=entry.remote_name or PurePosixPath(current.rel_path).name,
            asset_id=entry.asset_id,
            file_size=current.size,
            mtime_ns=current.mtime_ns,
            inode=current.inode,
            owner=self.owner,
            lease=LEASE,
        )
        self._carry(upload)

    def _asset_in_folder(self, entry: EntryRecord) -> AssetItem | None:
        """The entry's asset as Compass has it now, unless it is gone from the
        entry's folder (the file then goes up as a new asset)."""
        assert entry.asset_id is not None
        try:
            asset = self.client.get_asset(entry.asset_id)
        except NotFound:
            return None
        return asset if entry.folder_id in asset.folder_ids else None

    def _made_same_change(
        self, current: LocalFile, entry: EntryRecord, asset: AssetItem
    ) -> bool:
        """Whether Compass holds exactly this file's new bytes under the same name
        (the same edit saved on both sides, a copy put in place on both): then it
        is recorded as it is, with nothing to send and no conflict to keep."""
        if asset.checksum in (None, entry.checksum) or asset.size != current.size:
            return False
        if asset.name != entry.remote_name:
            return False
        try:
            checksum, _size, st = self._read_md5(current.rel_path)
        except OSError:
            return False
        if checksum != asset.checksum or not current.held_still(st):
            return False
        agreed = _as_found(
            entry, current, checksum=checksum, remote_updated_at=asset.updated_at
        )
        self.ledger.put_entry(self.mapping_id, agreed)
        self.report.count("adopted")
        log.info(
            "%s: Compass holds the same bytes already (asset %d); recorded",
            current.rel_path,
            asset.asset_id,
        )
        return True

    def _settled(self, local: LocalFile) -> LocalFile | None:
        """The file as it is now if it held still since the scan; else report it."""
        if time.time() - local.mtime_ns / 1e9 < RECENT_SECONDS:
            time.sleep(RECENT_SECONDS)
        current = stat_file(self.root, local.rel_path)
        if current is None:
            self._gone_before_upload(local.rel_path, report_only=True)
            return None
        reason = self._being_written(local, current)
        if reason is not None:
            self.report.fail(local.rel_path, reason, permanent=False)
            self.ledger.record_failure(
                self.mapping_id, local.rel_path, "upload", reason, permanent=False
            )
            return None
        return current

    def _adopter(self) -> Adopter:
        return Adopter(
            self.client,
            self.ledger,
            self.mapping_id,
            self.root,
            lambda size: self.uploader.counters.add(read=size),
            configured_roots=self.configured_roots,
        )

    def _adopt_existing(
        self, folders: FolderMap, new_files: Sequence[LocalFile]
    ) -> list[LocalFile]:
        """Record, without upload, new files Compass already holds; return the rest.

        Not in a drop box: a file dropped there is an ingest, each one a new asset
        with its own sidecar, even when an earlier drop brought the same bytes.
        """
        if self.mapping.mode == "dropbox":
            return list(new_files)
        adopter = self._adopter()
        adopted, remaining = adopter.find(new_files, folders.folder_of, folders.created)
        for found in adopted:
            self.ledger.put_entry(self.mapping_id, found.entry)
            self.report.count("adopted")
        return remaining

    def _upload_new(
        self,
        pool: ThreadPoolExecutor,
        futures: list[Future[None]],
        folders: FolderMap,
        new_files: Sequence[LocalFile],
    ) -> None:
        """Create assets in batches and hand each upload to the pool.

        At most a few batches of created assets run ahead of the uploads, so a crash
        leaves few assets waiting for their bytes.
        """
        room = threading.BoundedSemaphore(3 * CREATE_BATCH)
        for start in range(0, len(new_files), CREATE_BATCH):
            if self._stopping():
                self.cut_short = True
                return
            batch = new_files[start : start + CREATE_BATCH]
            self._pause_for_recent(batch)
            starts = [s for s in (self._begin_new(folders, f) for f in batch) if s]
            # Recorded before anything is asked of Compass, so a crash between the
            # two leaves an upload to resume rather than an asset nobody knows.
            uploads = self.ledger.begin_uploads(
                self.mapping_id, starts, self.owner, LEASE
            )
            created = self._create(uploads)
            for upload in created:
                room.acquire()
                future = self._submit(pool, upload.rel_path, self._carry, upload)
                future.add_done_callback(lambda _done: room.release())
                futures.append(future)

    @staticmethod
    def _pause_for_recent(batch: Sequence[LocalFile]) -> None:
        newest = max((f.mtime_ns for f in batch), default=0) / 1e9
        remaining = RECENT_SECONDS - (time.time() - newest)
        if remaining > 0:
            time.sleep(min(remaining, RECENT_SECONDS))

    def _begin_new(self, folders: FolderMap, local: LocalFile) -> UploadStart | None:
        folder_id = folders.folder_of(parent_of(local.rel_path))
        if folder_id is None:
            reason = "its folder could not be made in Compass (see the folder's error)"
            self.report.fail(local.rel_path, reason, permanent=False)
            return None
        current = self._settled_or_failed(local)
        if current is None or self._renamed_while_scanned(local):
            return None
        try:
            self._describe_asset(local.rel_path)
        except FileProblem as exc:
            self._failed(local.rel_path, exc.reason, exc)
            return None
        try:
            with open(self.root / local.rel_path, "rb"):
                pass
        except FileNotFoundError:
            self._failed(local.rel_path, FileVanished().reason, FileVanished())
            return None
        except OSError as exc:
            problem = FileProblem(
                f"cannot read the file: {exc.strerror or exc}", permanent=True
            )
            self._failed(local.rel_path, problem.reason, problem)
            return None
        return UploadStart(
            rel_path=current.rel_path,
            kind="new",
            folder_id=folder_id,
            remote_name=PurePosixPath(current.rel_path).name,
            asset_id=None,
            file_size=current.size,
            mtime_ns=current.mtime_ns,
            inode=current.inode,
        )

    def _describe_asset(self, upload_or_path: UploadRecord | str) -> AssetDescription:
        """The hooks' description of a new file's asset, asked once per pass."""
        rel_path = (
            upload_or_path
            if isinstance(upload_or_path, str)
            else upload_or_path.rel_path
        )
        with self._lock:
            known = self._descriptions.get(rel_path)
        if known is None:
            known = self.hooks.describe(rel_path)
            with self._lock:
                self._descriptions[rel_path] = known
        return known

    def _renamed_while_scanned(self, local: LocalFile) -> bool:
        """Whether a new file is a synced one renamed while the scan ran, which saw
        it under both names: its old name is gone now. It is left for the next
        pass, which renames its asset; sent now, it would be a second asset (and
        the next pass would take the pair for a move cut short)."""
        twin = self._twins.get(local.rel_path)
        if twin is None or os.path.lexists(self.root / twin.rel_path):
            return False  # new, or a hard link to a file still there: a file of its own
        reason = (
            f"renamed from {twin.rel_path} while the scan ran; left for the next "
            "pass, which renames its asset"
        )
        self._left_for_next_pass(local.rel_path, reason)
        return True

    def _gone_before_upload(self, rel_path: str, *, report_only: bool) -> None:
        """A file gone between the scan and its upload: a failure of a one-shot
        sync; under the agent's watch, which follows it, only news."""
        problem = FileVanished()
        if report_only and not self.watched:
            self.report.fail(rel_path, problem.reason, permanent=False)
        else:
            self._failed(rel_path, problem.reason, problem)

    def _settled_or_failed(self, local: LocalFile) -> LocalFile | None:
        current = stat_file(self.root, local.rel_path)
        if current is None:
            self._gone_before_upload(local.rel_path, report_only=False)
            return None
        reason = self._being_written(local, current)
        if reason is not None:
            problem = FileProblem(reason, permanent=False)
            self._failed(local.rel_path, problem.reason, problem)
            return None
        return current

    def _being_written(self, local: LocalFile, current: LocalFile) -> str | None:
        """Why a file is not ready to go up yet, if it is not."""
        if current != local:
            return "still being written (it changed since the scan); retried later"
        if open_for_writing(self.root / local.rel_path):
            # It held still for the settle time, yet its writer has not closed it:
            # an encoder or a copy that paused. Sent now, it would go up torn.
            return "still open for writing by another program; retried later"
        return None

    def _create(self, uploads: Sequence[UploadRecord]) -> list[UploadRecord]:
        """Create assets for a batch; a refused batch is retried one file at a time."""
        if not uploads:
            return []
        try:
            return self.uploader.create_assets(uploads, self._describe_asset)
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
            return []
        except RequestRejected as exc:
            if len(uploads) == 1:
                self._failed(uploads[0].rel_path, str(exc), exc)
                self.ledger.drop_upload(uploads[0].upload_id)
                return []
            return [u for one in uploads for u in self._create([one])]
        except CompassError as exc:
            for upload in uploads:
                self._failed(upload.rel_path, str(exc), exc)
            return []


def _how_sent(done: Transferred) -> str:
    """How the bytes went: all now, partly before (a resumed upload sends only the
    parts not yet confirmed, and its rate is that of what it sent), or all before."""
    if done.bytes_sent == 0 and done.size > 0:
        return " (all sent before; verified now)"
    rate = done.bytes_sent / done.seconds / 1e6 if done.seconds > 0 else 0.0
    timing = f" in {done.seconds:.2f} s ({rate:.1f} MB/s)"
    if done.bytes_sent < done.size:
        return f" ({done.bytes_sent} sent now, the rest before){timing}"
    return timing


def _waits_for_pull(
    entry: EntryRecord, asset: AssetItem | None, in_view: Callable[[str], bool]
) -> str | None:
    """Why a two-way file's change must wait for the next pull, if it must: its
    asset holds other bytes than both sides agreed on, or another name.

    Other bytes are a conflict, which the pull settles by keeping both versions (a
    revision sent from here would bury the other one). Another name is a rename
    made in Compass, which the pull brings here first, unless the mapping's filters
    leave the new name out (`in_view`): then the file keeps its name here and the
    revision goes up at once, under the asset's name. An asset gone from the folder
    (None) is neither: the file then goes up as a new asset.
    """
    if asset is None:
        return None
    if asset.checksum != entry.checksum:
        return (
            "changed in Compass too since the last sync; the next pull keeps both "
            "versions"
        )
    renamed = entry.remote_name is not None and asset.name != entry.remote_name
    if renamed and in_view(join(parent_of(entry.rel_path), asset.name)):
        return (
            f"renamed in Compass since the last sync (to {asset.name!r}); the next "
            "pull renames it here, then this change goes up"
        )
    return None


def _as_found(entry: EntryRecord, local: LocalFile, **changes: Any) -> EntryRecord:
    """A synced file's entry with its size, time and inode as found now."""
    return replace(
        entry,
        kind="file",
        size=local.size,
        mtime_ns=local.mtime_ns,
        inode=local.inode,
        **changes,
    )

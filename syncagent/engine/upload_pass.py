"""One upload pass over a mapping: resume, scan, plan, transfer, verify, record."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import PurePosixPath

from syncagent.compass import (
    AssetUpdate,
    AuthenticationFailed,
    CompassClient,
    CompassError,
    CompassUnreachable,
    NotFound,
    RequestRejected,
)
from syncagent.config import MappingConfig
from syncagent.engine.adoption import Adopted, Adopter
from syncagent.engine.filters import PathFilter
from syncagent.engine.folders import FolderMap
from syncagent.engine.hashing import md5_of_file
from syncagent.engine.hooks import AssetDescription, PassHooks
from syncagent.engine.identity import owner_is_alive
from syncagent.engine.planner import Rename, UploadPlan, parent_of, plan_upload_pass
from syncagent.engine.problems import (
    FileProblem,
    FileVanished,
    UploadStopped,
    reported_before,
)
from syncagent.engine.progress import Progress
from syncagent.engine.report import PassReport
from syncagent.engine.scanner import LocalFile, LocalTree, scan_tree, stat_file
from syncagent.engine.upload import LEASE, Uploader
from syncagent.ledger import (
    EntryRecord,
    FailureRecord,
    Ledger,
    LedgerError,
    UploadRecord,
    UploadStart,
)

log = logging.getLogger(__name__)

CREATE_BATCH = 50
# A file modified this recently may still be being written: look at it once more.
RECENT_SECONDS = 1.0


class UploadPass:
    """Brings Compass up to date with one mapping's local root."""

    def __init__(
        self,
        *,
        mapping: MappingConfig,
        mapping_id: int,
        client: CompassClient,
        ledger: Ledger,
        uploader: Uploader,
        owner: str,
        concurrency: int,
        progress: Progress,
        hooks: PassHooks | None = None,
        dry_run: bool = False,
        defer: Callable[[LocalFile], bool] | None = None,
        deferred_reason: str | None = None,
        stop: threading.Event | None = None,
        configured_roots: Collection[str] = (),
    ) -> None:
        self.mapping = mapping
        self.root = mapping.local_root
        self.mapping_id = mapping_id
        self.client = client
        self.ledger = ledger
        self.uploader = uploader
        self.owner = owner
        self.concurrency = concurrency
        self.progress = progress
        self.hooks = hooks or PassHooks()
        self.dry_run = dry_run
        # The agent defers files still settling, and stops taking new files on shutdown.
        self.defer = defer
        # Set when nothing will take deferred files later in this process (a
        # one-shot sync): they are reported, with this reason, for the next run.
        self.deferred_reason = deferred_reason
        self.stop = stop or threading.Event()
        self.rules = PathFilter(mapping.include, mapping.exclude)
        self.report = PassReport(str(self.root), mapping.folder_id)
        self._moves: list[Rename] = []
        self._resumed: set[str] = set()
        self._verified: set[str] = set()
        # Whether a stop left some of the planned work for the next pass.
        self.cut_short = False
        self.configured_roots = set(configured_roots) | {str(self.root)}
        self._halted = threading.Event()
        self._descriptions: dict[str, AssetDescription] = {}
        self._lock = threading.Lock()
        # The failures recorded before this pass: those that come again on an
        # unchanged file are not warned about again.
        self._known_failures: dict[str, FailureRecord] = {}

    def run(self) -> PassReport:
        """Run the pass; per-file failures are in the report, never raised."""
        started = time.monotonic()
        read_before = self.uploader.counters.bytes_read
        sent_before = self.uploader.counters.bytes_sent
        try:
            self._run()
        except AuthenticationFailed:
            raise
        except CompassError as exc:
            self.report.fatal = f"Compass folder {self.mapping.folder_id}: {exc}"
        self.report.seconds = time.monotonic() - started
        self.report.bytes_read += self.uploader.counters.bytes_read - read_before
        self.report.bytes_sent = self.uploader.counters.bytes_sent - sent_before
        return self.report

    def _run(self) -> None:
        # Step: check both ends of the mapping are there.
        if not self._ends_ready():
            return
        self._known_failures = {
            f.rel_path: f for f in self.ledger.failures(self.mapping_id)
        }

        # Step: finish the uploads a previous run left in flight.
        if not self.dry_run:
            self._resume()

        # Step: scan the local tree and plan against the synced tree.
        tree = scan_tree(self.root, self.rules)
        synced = self.ledger.entries(self.mapping_id)
        in_flight = {u.rel_path for u in self.ledger.uploads(self.mapping_id)}
        # Only where an empty root would cost something: assets removed from
        # Compass, or (two-way) every file kept from coming back down.
        guarded = self.mapping.on_local_delete == "remove" or self.mapping.downloads
        if guarded and _looks_unmounted(tree, synced):
            self.report.fatal = (
                f"{self.root}: the local folder is empty, yet files were synced from "
                "it; nothing is forgotten or removed in Compass (is it unmounted? If "
                "you emptied it on purpose, remove the assets in Compass)"
            )
            return
        plan = plan_upload_pass(
            tree,
            synced,
            in_flight,
            remove_deleted=self.mapping.on_local_delete == "remove",
        )
        self._spare_excluded(plan)
        self.report.unchanged = plan.unchanged - self._resumed_unchanged(
            tree, plan, in_flight
        )
        self._hold_back(plan)
        if self.dry_run:
            self._note_problems(tree)
            self.report.planned.extend(("resume upload", p) for p in sorted(in_flight))
            self._describe(plan, synced)
            return
        self.progress.files_planned(
            len(plan.uploads) + len(plan.revisions),
            sum(f.size for f in plan.uploads) + sum(f.size for f, _ in plan.revisions),
        )

        # Step: clear the entries of paths that changed kind, before they are reused.
        self._settle_replaced(plan.replaced)

        # Step: make the Compass folders of new local directories.
        folders = FolderMap(
            self.client, self.ledger, self.mapping_id, self.mapping.folder_id, synced
        )
        self._make_folders(folders, plan.folders)
        # After the folders: recording one clears its failures, and a folder that
        # could not be listed keeps its own.
        self._note_problems(tree)

        # Step: transfer — content checks, revisions, renames and new files.
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="file") as pool:
            futures: list[Future[None]] = []
            for local, entry in plan.checks:
                futures.append(
                    self._submit(pool, local.rel_path, self._check, local, entry)
                )
            for local, entry in plan.revisions:
                futures.append(
                    self._submit(pool, local.rel_path, self._revise, local, entry)
                )
            renames = self._true_renames(plan)  # may add uploads: first
            new_files = list(plan.uploads)
            for rename in renames:
                if not self._rename_in_place(folders, rename):
                    new_files.append(rename.local)
            new_files = self._adopt_existing(folders, new_files)
            self._upload_new(pool, futures, folders, new_files)
            _join(futures)

        # Step: settle files that are gone locally, and moves.
        if not self._stopping():
            self._settle_deleted(plan)
        elif plan.removals or plan.forgets or plan.moved or self._moves:
            self.cut_short = True

    # -- the two ends -----------------------------------------------------------

    def _ends_ready(self) -> bool:
        if not self.root.is_dir():
            self.report.fatal = f"{self.root}: the local folder does not exist"
            return False
        try:
            listing = self.client.list_subfolders(self.mapping.folder_id)
        except NotFound:
            self.report.fatal = (
                f"Compass folder {self.mapping.folder_id} does not exist or is not "
                f"visible to user {self.client.session.username!r}"
            )
            return False
        if not listing.permissions.upload:
            self.report.fatal = (
                f"user {self.client.session.username!r} may not upload to Compass "
                f"folder {self.mapping.folder_id} ({listing.name})"
            )
            return False
        return True

    # -- resuming ---------------------------------------------------------------

    def _resume(self) -> None:
        mine: list[UploadRecord] = []
        for upload in self.ledger.uploads(self.mapping_id):
            alive = owner_is_alive(upload.owner, self.owner)
            claimed = self.ledger.claim_upload(
                upload.upload_id, self.owner, LEASE, force=not alive
            )
            if claimed is None:
                reason = f"being uploaded by another process ({upload.owner})"
                self.report.fail(upload.rel_path, reason, permanent=False)
            else:
                mine.append(claimed)
        if not mine:
            return
        self._resumed = {u.rel_path for u in mine}
        log.info("%s: resuming %d uploads left in flight", self.root, len(mine))
        orphans = [u for u in mine if u.kind == "new" and u.asset_id is None]
        adopted = self._guard_batch(orphans, self.uploader.adopt_orphans) or {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="file") as pool:
            futures = [
                self._submit(pool, u.rel_path, self._carry, self._fresh(u, adopted))
                for u in mine
            ]
            _join(futures)

    def _resumed_unchanged(
        self, tree: LocalTree, plan: UploadPlan, in_flight: set[str]
    ) -> int:
        """Files finished by the resume step, which the plan then sees unchanged:
        they were counted once, as uploaded, and must not count again."""
        if not self._resumed:
            return 0
        moving = set(in_flight)
        moving.update(f.rel_path for f in plan.uploads)
        moving.update(f.rel_path for f, _ in plan.revisions + plan.checks)
        moving.update(r.local.rel_path for r in plan.renames)
        return sum(1 for p in self._resumed if p in tree.files and p not in moving)

    def _fresh(self, upload: UploadRecord, adopted: dict[int, int]) -> UploadRecord:
        if upload.upload_id in adopted:
            reloaded = self.ledger.upload(upload.upload_id)
            if reloaded is not None:
                return reloaded
        return upload

    # -- folders ----------------------------------------------------------------

    def _make_folders(self, folders: FolderMap, rel_dirs: Sequence[str]) -> None:
        for rel_dir in rel_dirs:
            if folders.folder_of(parent_of(rel_dir)) is None and parent_of(rel_dir):
                continue  # its parent failed; that failure is already reported
            try:
                folder_id = folders.ensure(rel_dir)
            except AuthenticationFailed:
                raise
            except CompassUnreachable as exc:
                self._halt(exc)
                return
            except CompassError as exc:
                self._failed(rel_dir, f"cannot make its Compass folder: {exc}", exc)
                continue
            if folder_id in folders.created:
                self.report.count("folders_created")

    # -- files ------------------------------------------------------------------

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        rel_path: str,
        action: Callable[..., None],
        *args: object,
    ) -> Future[None]:
        return pool.submit(self._guard, rel_path, action, *args)

    def _guard(self, rel_path: str, action: Callable[..., None], *args: object) -> None:
        """Run one file's work; record its failure instead of raising."""
        if self._stopping():
            log.debug("%s: left for the next run (stopping)", rel_path)
            self.cut_short = True
            return
        try:
            action(*args)
        except FileProblem as exc:
            self.cut_short = self.cut_short or isinstance(exc, UploadStopped)
            self._failed(rel_path, exc.reason, exc)
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
        except CompassError as exc:
            self._failed(rel_path, str(exc), exc)
        except OSError as exc:
            self._failed(rel_path, f"local error: {exc.strerror or exc}", exc)
        except LedgerError:
            raise
        except Exception as exc:
            # A bug must not stop the other files; keep the traceback for a report.
            log.exception("%s: unexpected error", rel_path)
            self._failed(rel_path, f"unexpected error: {exc!r}", exc)

    def _stopping(self) -> bool:
        """Whether to start no new work: the agent is stopping, or Compass is gone."""
        return self.stop.is_set() or self._halted.is_set()

    def _halt(self, exc: CompassUnreachable) -> None:
        """Compass cannot be reached: stop this pass, saying so once."""
        if not self._halted.is_set():
            self._halted.set()
            log.error("%s: %s; the pass stops here", self.root, exc)
            self.report.fatal = f"Compass cannot be reached; the pass stopped: {exc}"
            self.report.fatal_logged = True

    def _guard_batch(
        self,
        uploads: Sequence[UploadRecord],
        action: Callable[[Sequence[UploadRecord]], dict[int, int]],
    ) -> dict[int, int] | None:
        if not uploads:
            return {}
        try:
            return action(uploads)
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
            return None
        except CompassError as exc:
            for upload in uploads:
                self._failed(upload.rel_path, str(exc), exc)
            return None

    def _failed(
        self,
        rel_path: str,
        reason: str,
        exc: Exception,
        *,
        changed_ns: int | None = None,
    ) -> None:
        permanent = isinstance(exc, RequestRejected) or (
            isinstance(exc, FileProblem) and exc.permanent
        )
        if permanent and self._reported_before(rel_path, reason, changed_ns):
            log.debug("%s: %s (unchanged since it was reported)", rel_path, reason)
        else:
            log.warning("%s: %s", rel_path, reason)
        self.report.fail(rel_path, reason, permanent=permanent)
        self.ledger.record_failure(
            self.mapping_id, rel_path, "upload", reason, permanent=permanent
        )
        self.progress.file_done(rel_path, "failed")
        self.hooks.failed(rel_path, reason, permanent=permanent)

    def _reported_before(
        self, rel_path: str, reason: str, changed_ns: int | None
    ) -> bool:
        """Whether this failure was reported already on the file as it is now;
        `changed_ns` is the path's ctime if the caller has it."""
        known = self._known_failures.get(rel_path)
        if known is None:
            return False
        if changed_ns is None:
            with contextlib.suppress(OSError):
                changed_ns = os.lstat(self.root / rel_path).st_ctime_ns
        return reported_before(known, reason, changed_ns)

    def _carry(self, upload: UploadRecord) -> None:
        done = self.uploader.carry(self.root, upload, self._describe_asset, self.stop)
        with self._lock:
            self._verified.add(done.rel_path)
        outcome = "revised" if done.kind == "revision" else "uploaded"
        self.report.count(outcome)
        rate = done.size / done.seconds / 1e6 if done.seconds > 0 else 0.0
        log.info(
            "%s: %s, %d bytes in %.2f s (%.1f MB/s), asset %d",
            done.rel_path,
            outcome,
            done.size,
            done.seconds,
            rate,
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
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (
            local.size,
            local.mtime_ns,
            local.inode,
        ):
            return  # it moved again while hashed; the next pass looks again
        touched = EntryRecord(
            rel_path=entry.rel_path,
            kind="file",
            folder_id=entry.folder_id,
            asset_id=entry.asset_id,
            remote_name=entry.remote_name,
            size=local.size,
            mtime_ns=local.mtime_ns,
            inode=local.inode,
            checksum=entry.checksum,
            remote_updated_at=entry.remote_updated_at,
            origin=entry.origin,
        )
        self.ledger.put_entry(self.mapping_id, touched)
        self.report.count("touched")

    def _revise(self, local: LocalFile, entry: EntryRecord) -> None:
        current = self._settled(local)
        if current is None or entry.asset_id is None or entry.folder_id is None:
            return
        if self.mapping.downloads and self._changed_in_compass(entry):
            # Both sides changed: a conflict, which the pull settles by keeping both
            # versions. A revision sent from here would bury the other one.
            raise FileProblem(
                "changed in Compass too since the last sync; the next pull keeps "
                "both versions",
                permanent=False,
            )
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

    def _gone_from_folder(self, entry: EntryRecord) -> bool:
        """Whether the entry's asset was deleted, or taken out of its folder."""
        assert entry.asset_id is not None
        try:
            asset = self.client.get_asset(entry.asset_id)
        except NotFound:
            return True
        return entry.folder_id not in asset.folder_ids

    def _changed_in_compass(self, entry: EntryRecord) -> bool:
        """Whether the entry's asset holds other bytes than both sides agreed on.

        An asset that is gone from the folder is no conflict: the file then goes up
        as a new asset.
        """
        assert entry.asset_id is not None
        try:
            asset = self.client.get_asset(entry.asset_id)
        except NotFound:
            return False
        if entry.folder_id not in asset.folder_ids:
            return False
        return asset.checksum != entry.checksum

    def _settled(self, local: LocalFile) -> LocalFile | None:
        """The file as it is now if it held still since the scan; else report it."""
        if time.time() - local.mtime_ns / 1e9 < RECENT_SECONDS:
            time.sleep(RECENT_SECONDS)
        current = stat_file(self.root, local.rel_path)
        if current is None:
            self.report.fail(
                local.rel_path, "deleted before it was uploaded", permanent=False
            )
            return None
        if current != local:
            reason = "still being written (it changed since the scan); retried later"
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
        current = self._settled_quietly(local)
        if current is None:
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

    def _settled_quietly(self, local: LocalFile) -> LocalFile | None:
        current = stat_file(self.root, local.rel_path)
        if current is None:
            problem = FileProblem("deleted before it was uploaded", permanent=False)
            self._failed(local.rel_path, problem.reason, problem)
            return None
        if current != local:
            problem = FileProblem(
                "still being written (it changed since the scan); retried later",
                permanent=False,
            )
            self._failed(local.rel_path, problem.reason, problem)
            return None
        return current

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

    # -- renames and deletions --------------------------------------------------

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

    def _read_md5(self, rel_path: str) -> tuple[str, int, os.stat_result]:
        """A file's MD5 and size, and its stat as read (OSError if it cannot be)."""
        with open(self.root / rel_path, "rb") as stream:
            checksum, size = md5_of_file(stream)
            st = os.fstat(stream.fileno())
        self.uploader.counters.add(read=size)
        return checksum, size, st

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

    def _settle_deleted(self, plan: UploadPlan) -> None:
        # Moves: the old asset goes once the file is verified under its new path.
        if self._moves:
            # Checked against this pass's verified uploads, not the ledger: a drop
            # box moves a verified file on to done/ and forgets its entry.
            for rename in self._moves:
                if rename.local.rel_path in self._verified:
                    why = f"the file moved to {rename.local.rel_path}"
                    self._remove_remote([rename.entry], "moved", why)
        for rename in plan.moved:
            why = f"the file moved to {rename.local.rel_path} (finishing the move)"
            self._remove_remote([rename.entry], "moved", why)

        # Deletions: forgotten, or removed from Compass when the mapping says so.
        self._remove_remote(plan.removals, "removed", "the file was deleted here")
        if self.mapping.downloads:
            # Two-way: remember the delete, or the next pull brings the file back.
            for entry in plan.forgets:
                self.ledger.withhold(
                    self.mapping_id, entry, folder_only=entry.kind == "dir"
                )
        else:
            forgotten = [e.rel_path for e in plan.forgets]
            self.ledger.remove_entries(self.mapping_id, forgotten)
        self.report.count("forgotten", sum(e.kind == "file" for e in plan.forgets))

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
                pass
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

    # -- reporting --------------------------------------------------------------

    def _hold_back(self, plan: UploadPlan) -> None:
        """Leave files the agent says are still settling to a later pass.

        Renames are never held back: a file that matches its synced entry is still.
        """
        if self.defer is None:
            return
        held: list[str] = []

        def defer(local: LocalFile) -> bool:
            assert self.defer is not None
            if not self.defer(local):
                return False
            if not self.hooks.holds(local):
                held.append(local.rel_path)
            return True

        plan.uploads = [f for f in plan.uploads if not defer(f)]
        plan.revisions = [(f, e) for f, e in plan.revisions if not defer(f)]
        plan.checks = [(f, e) for f, e in plan.checks if not defer(f)]
        if self.deferred_reason is not None:
            for rel_path in held:
                log.warning("%s: %s", rel_path, self.deferred_reason)
                self.report.fail(rel_path, self.deferred_reason, permanent=False)
                self.ledger.record_failure(
                    self.mapping_id,
                    rel_path,
                    "upload",
                    self.deferred_reason,
                    permanent=False,
                )

    def _note_problems(self, tree: LocalTree) -> None:
        """Report what the scan could not take; forget failures of paths now gone."""
        for problem in tree.problems:
            failure = FileProblem(problem.reason, permanent=True)
            self._failed(
                problem.rel_path,
                problem.reason,
                failure,
                changed_ns=problem.changed_ns,
            )
        present = set(tree.files) | tree.dirs | {p.rel_path for p in tree.problems}
        # What the scan did not see may still be there, failing as before.
        stale = [
            f.rel_path
            for f in self.ledger.failures(self.mapping_id)
            if f.rel_path not in present and tree.sees(f.rel_path)
        ]
        self.ledger.clear_failures(self.mapping_id, stale)

    def _describe(self, plan: UploadPlan, synced: dict[str, EntryRecord]) -> None:
        """Fill the report with what the pass would do, for --dry-run.

        Folders and files already in Compass are looked up (reading, never writing),
        so that a dry run after a lost ledger says "adopt", not "upload".
        """
        planned = self.report.planned
        folders = FolderMap(
            self.client, self.ledger, self.mapping_id, self.mapping.folder_id, synced
        )
        planned.extend(
            ("make folder", d) for d in plan.folders if not folders.lookup(d)
        )
        adopted: list[Adopted] = []
        remaining = list(plan.uploads)
        if self.mapping.mode != "dropbox":
            adopted, remaining = self._adopter().find(
                plan.uploads, folders.lookup, set()
            )
        planned.extend(
            ("adopt", f"{a.local.rel_path} (asset {a.entry.asset_id})") for a in adopted
        )
        planned.extend(("upload", f.rel_path) for f in remaining)
        planned.extend(("upload revision", f.rel_path) for f, _ in plan.revisions)
        planned.extend(("check content", f.rel_path) for f, _ in plan.checks)
        planned.extend(
            ("rename", f"{r.entry.rel_path} -> {r.local.rel_path}")
            for r in plan.renames
        )
        planned.extend(
            ("remove from Compass", f"{r.entry.rel_path} (moved to {r.local.rel_path})")
            for r in plan.moved
        )
        planned.extend(("forget", e.rel_path) for e in plan.forgets)
        planned.extend(("remove from Compass", e.rel_path) for e in plan.removals)


def _join(futures: Sequence[Future[None]]) -> None:
    """Wait for every future; re-raise the first error that escaped its guard."""
    wait(futures)
    for future in futures:
        future.result()


def _looks_unmounted(tree: LocalTree, synced: dict[str, EntryRecord]) -> bool:
    """An empty root whose ledger holds several synced files: a share not mounted (or
    a folder emptied by mistake) rather than every file deleted on purpose. A single
    synced file deleted leaves an empty root too, and that is an ordinary delete."""
    synced_files = sum(1 for e in synced.values() if e.kind == "file")
    return not tree.files and not tree.dirs and not tree.problems and synced_files > 1

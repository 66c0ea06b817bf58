"""One upload pass over a mapping: resume, scan, plan, transfer, verify, record."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from syncagent.compass import (
    AuthenticationFailed,
    CompassError,
    CompassUnreachable,
)
from syncagent.engine.adoption import Adopted
from syncagent.engine.folders import FolderMap, folder_refusal
from syncagent.engine.identity import owner_is_alive
from syncagent.engine.mount_guard import looks_unmounted, unmounted_message
from syncagent.engine.placements import settle_placements
from syncagent.engine.planner import UploadPlan, parent_of, plan_upload_pass
from syncagent.engine.problems import FileProblem
from syncagent.engine.report import PassReport
from syncagent.engine.safe_root import SafeRoot
from syncagent.engine.scanner import LocalFile, LocalTree, scan_tree
from syncagent.engine.upload import LEASE
from syncagent.engine.upload_renames import RenameSteps
from syncagent.ledger import EntryRecord, UploadRecord

log = logging.getLogger(__name__)


class UploadPass(RenameSteps):
    """Brings Compass up to date with one mapping's local root."""

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
        for counter, count in self.hooks.left().items():
            self.report.count(counter, count)
        failed = {f.rel_path for f in self.report.failures}
        for rel_path, reason in self.hooks.stuck():
            # In Compass, yet not done with here (a drop box could not move it on).
            if rel_path not in failed:
                self.report.fail(rel_path, reason, permanent=True)
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

        # Step: finish the uploads a previous run left in flight, and record the
        # downloads it placed (of a two-way mapping, whose pull comes after).
        if not self.dry_run:
            self._resume()
            if self.mapping.downloads:
                settle_placements(self.ledger, self.mapping_id, SafeRoot(self.root))

        # Step: scan the local tree and plan against the synced tree.
        tree = scan_tree(self.root, self.rules)
        synced = self.ledger.entries(self.mapping_id)
        in_flight = {u.rel_path for u in self.ledger.uploads(self.mapping_id)}
        # A drop box empties itself; a root that cannot be listed sees nothing
        # deleted (its own error says why).
        guarded = self.mapping.mode != "dropbox" and "" not in tree.unseen
        if guarded and looks_unmounted(tree.files, synced.values(), self.rules.covers):
            self.report.fatal = unmounted_message(self.root)
            return
        plan = plan_upload_pass(
            tree,
            synced,
            in_flight,
            remove_deleted=self.mapping.on_local_delete == "remove",
        )
        self._spare_excluded(plan)
        self._twins = plan.twins
        self._first_look = tree
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
            self._join(futures)

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
        self.report.fatal = folder_refusal(
            self.client, self.mapping.folder_id, "upload"
        )
        return self.report.fatal is None

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
        log.info(
            "%s: resuming %d upload%s left in flight",
            self.root,
            len(mine),
            "" if len(mine) == 1 else "s",
        )
        orphans = [u for u in mine if u.kind == "new" and u.asset_id is None]
        adopted = self._guard_batch(orphans, self.uploader.adopt_orphans)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="file") as pool:
            futures = [
                self._submit(
                    pool, u.rel_path, self._carry, self._fresh(u, adopted), True
                )
                for u in mine
            ]
            self._join(futures)

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

    # -- reporting --------------------------------------------------------------

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

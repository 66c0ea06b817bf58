"""One pull over a mapping: list Compass, plan against the ledger and the disk, apply.

The pass lists the remote tree, scans the disk, plans (`pull_planner.py`) and carries
the plan out in an order that keeps every step safe: folders first (a folder that
fails holds back only what lies below it, `pull_hold.py`), then removals that free
names, renames, downloads and conflict copies on a pool of workers, emptied folders,
and last the proxies. Per-path failures are recorded in the ledger and the report; the
pass goes on with the rest, and a pass that ran to its end clears the failures of
earlier pulls that did not happen again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime

from syncagent.compass import (
    AuthenticationFailed,
    CompassClient,
    CompassError,
    CompassUnreachable,
    RequestRejected,
)
from syncagent.config import DEFAULT_EXCLUDES, RESERVED_EXCLUDES, MappingConfig
from syncagent.engine.download import (
    Downloader,
    hash_local,
    source_asset_of,
    source_key,
    temp_name,
)
from syncagent.engine.filters import PathFilter
from syncagent.engine.folders import folder_refusal
from syncagent.engine.local_view import LocalView, scan_local
from syncagent.engine.mount_guard import looks_unmounted, unmounted_message
from syncagent.engine.placements import settle_placements
from syncagent.engine.problems import FileProblem
from syncagent.engine.progress import Progress
from syncagent.engine.proxy_plan import ProxyPlan
from syncagent.engine.proxy_pull import ProxyPuller
from syncagent.engine.pull_apply import PullApplier, dir_entry
from syncagent.engine.pull_hold import blocker, dir_paths, hold_back
from syncagent.engine.pull_ops import MakeDir, MoveDir, PullOptions, PullPlan
from syncagent.engine.pull_planner import plan_pull
from syncagent.engine.pull_report import PullReport
from syncagent.engine.remote_tree import RemoteTree, list_remote_tree
from syncagent.engine.safe_root import SafeRoot
from syncagent.ledger import EntryRecord, Ledger, LedgerError
from syncagent.logs import in_context

log = logging.getLogger(__name__)

# An unfinished download older than this is abandoned: its temp file is removed.
STALE_TEMP_SECONDS = 7 * 24 * 3600.0


def pull_rules(mapping: MappingConfig) -> PathFilter:
    """The filters a pull obeys. The default excludes keep local litter from going
    up; a download-only mirror has nothing to keep from Compass, so it takes every
    asset but those the mapping's own globs leave out. A two-way mapping keeps them
    all, so both directions agree on which files take part."""
    exclude = mapping.exclude
    defaults = len(DEFAULT_EXCLUDES)
    if mapping.direction == "download" and exclude[:defaults] == DEFAULT_EXCLUDES:
        exclude = (*RESERVED_EXCLUDES, *exclude[defaults:])
    return PathFilter(mapping.include, exclude)


_DOING = {
    "fetch": " while downloading it",
    "conflict": " while keeping both versions",
    "trash": " while moving it to the trash",
    "move": " while renaming it",
    "make_dir": " while making the folder",
    "move_dir": " while moving the folder",
    "remove_dir": " while removing the emptied folder",
}
"""What a local error interrupted, by the PullApplier step that met it."""


class PullPass:
    """Brings one mapping's local root up to date with its Compass folder."""

    def __init__(
        self,
        *,
        mapping: MappingConfig,
        mapping_id: int,
        client: CompassClient,
        ledger: Ledger,
        concurrency: int,
        progress: Progress,
        dry_run: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        self.mapping = mapping
        self.mapping_id = mapping_id
        self.client = client
        self.ledger = ledger
        self.concurrency = concurrency
        self.progress = progress
        self.dry_run = dry_run
        self.stop = stop or threading.Event()
        self.rules = pull_rules(mapping)
        self.report = PullReport(str(mapping.local_root), mapping.folder_id)
        self._failed_paths: set[str] = set()
        self._known_failures: dict[str, str] | None = None
        self._failures_lock = threading.Lock()
        self._halted = threading.Event()
        self.options = PullOptions(
            two_way=mapping.direction == "both",
            trash_removed=mapping.on_remote_delete == "trash",
            remove_local_deletes=mapping.on_local_delete == "remove",
            restore_archived=mapping.restore_archived,
            proxies_only=mapping.proxies_only,
        )

    def run(self) -> PullReport:
        """Run the pass; per-path failures are in the report, never raised."""
        started = time.monotonic()
        try:
            self._run()
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
        except CompassError as exc:
            self.report.fatal = f"Compass folder {self.mapping.folder_id}: {exc}"
        except FileProblem as exc:
            self.report.fatal = f"{self.mapping.local_root}: {exc.reason}"
        except OSError as exc:
            self.report.fatal = f"{self.mapping.local_root}: {exc.strerror or exc}"
        self.report.seconds = time.monotonic() - started
        return self.report

    def _run(self) -> None:
        # Step: check both ends of the mapping.
        if not self._ends_ready():
            return
        root = SafeRoot(self.mapping.local_root)
        if not self.dry_run:
            settle_placements(self.ledger, self.mapping_id, root)

        # Step: list Compass, look at the disk, and plan.
        remote = list_remote_tree(
            self.client, self.mapping.folder_id, self._known_asset_ids()
        )
        local = scan_local(self.mapping.local_root)
        synced = self.ledger.entries(self.mapping_id)
        if looks_unmounted(local.files, synced.values(), self.rules.covers):
            self.report.fatal = unmounted_message(self.mapping.local_root)
            return
        plan = self._plan(remote, local, root, synced)
        self.report.unchanged = plan.unchanged
        downloader = Downloader(self.client, root, self.progress, stop=self.stop)
        if self.dry_run:
            self._describe(plan)
            if self.mapping.proxies:
                self._describe_proxies(self._proxy_work(plan, root, downloader)[1])
            return
        apply = PullApplier(
            root=root,
            client=self.client,
            ledger=self.ledger,
            mapping_id=self.mapping_id,
            downloader=downloader,
            report=self.report,
        )
        self._apply(plan, apply)

        # Step: proxies of every asset in place.
        if self.mapping.proxies and not self._stopping():
            self._pull_proxies(plan, root, downloader)

        # Step: sweep downloads abandoned long ago.
        self._sweep_temps(root, local, remote)

        # Step: what failed before and did not fail now is fixed.
        if not self._stopping():
            self._clear_fixed()

    # -- ends and inputs ----------------------------------------------------------

    def _ends_ready(self) -> bool:
        root = self.mapping.local_root
        if root.exists() and not root.is_dir():
            self.report.fatal = f"{root}: not a folder"
            return False
        if not root.exists() and self.ledger.count_entries(self.mapping_id):
            # It held synced files: a share or disk not mounted, or a folder moved
            # away. Made again, it would be filled with the whole library (or, two
            # way, read as "everything was deleted here").
            self.report.fatal = (
                f"{root}: the local folder is gone; it is not made again while the "
                "ledger has files synced with it (mount it or move it back, or "
                f"`syncagent db forget {root}` starts this mapping afresh, with no "
                "agent running on the ledger)"
            )
            return False
        if not self.dry_run:
            root.mkdir(parents=True, exist_ok=True)
        self.report.fatal = folder_refusal(
            self.client, self.mapping.folder_id, "download"
        )
        return self.report.fatal is None

    def _known_asset_ids(self) -> list[int]:
        entries = self.ledger.entries(self.mapping_id).values()
        return sorted({e.asset_id for e in entries if e.asset_id is not None})

    def _plan(
        self,
        remote: RemoteTree,
        local: LocalView,
        root: SafeRoot,
        synced: dict[str, EntryRecord],
    ) -> PullPlan:
        """Plan; when both sides may have changed a file, hash it and plan again."""
        in_flight = {
            u.asset_id
            for u in self.ledger.uploads(self.mapping_id)
            if u.asset_id is not None
        }
        withheld = self.ledger.withheld(self.mapping_id)

        def plan_with(local_md5: dict[str, str]) -> PullPlan:
            return plan_pull(
                remote,
                synced,
                local,
                rules=self.rules,
                options=self.options,
                withheld=withheld,
                in_flight=in_flight,
                local_md5=local_md5,
            )

        plan = plan_with({})
        if not plan.needs_hash:
            return plan
        hashes = {p: hash_local(root, p) for p in plan.needs_hash}
        return plan_with({p: md5 for p, md5 in hashes.items() if md5 is not None})

    # -- applying -------------------------------------------------------------------

    def _apply(self, plan: PullPlan, apply: PullApplier) -> None:
        # Step: ask Compass to restore archived assets (pulled once restored).
        if plan.restores:
            self._restore(plan)

        # Step: folders, top-down; what lies below a folder that failed waits.
        blocked = self._apply_dirs(plan.dirs, apply)
        plan, held = hold_back(plan, blocked)
        for rel_dir, count in sorted(held.counts.items()):
            log.warning(
                "%s: %d changes below this folder wait until it can be used",
                rel_dir,
                count,
            )

        # Step: removals and local deletions, which free names for what follows.
        now = datetime.now(UTC)
        for entry in plan.trash:
            self._guard(entry.rel_path, apply.trash, entry, now)
        self.ledger.remove_entries(self.mapping_id, [e.rel_path for e in plan.forgets])
        self.report.count("forgotten", sum(e.kind == "file" for e in plan.forgets))
        self._withhold(plan)

        # Step: renames, and entries both sides already agree on.
        for move in plan.moves:
            self._guard(move.entry.rel_path, apply.move, move)
        for record in plan.records:
            if record.forget:
                self.ledger.rename_entry(self.mapping_id, record.forget, record.entry)
            else:
                self.ledger.put_entry(self.mapping_id, record.entry)
        self.report.count("adopted", sum(r.adopted for r in plan.records))

        # Step: downloads and conflict copies.
        assets = [op.asset for op in plan.fetches] + [c.asset for c in plan.conflicts]
        self.progress.files_planned(len(assets), sum(a.size or 0 for a in assets))
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="pull") as pool:
            futures = [
                self._submit(pool, op.rel_path, apply.fetch, op) for op in plan.fetches
            ]
            futures += [
                self._submit(pool, op.rel_path, apply.conflict, op)
                for op in plan.conflicts
            ]
            _join(futures)

        # Step: folders Compass removed, once their files are in the trash.
        if not self._stopping():
            for entry in plan.dir_removals:
                self._guard(entry.rel_path, apply.remove_dir, entry)
        for notice in plan.notices:
            log.info("%s: %s", notice.subject, notice.reason)
            self.report.notice(notice.subject, notice.reason)

    def _apply_dirs(
        self, ops: Sequence[MakeDir | MoveDir], apply: PullApplier
    ) -> list[str]:
        """Make and move directories; the ones that failed (and all below them)."""
        blocked: list[str] = []
        for op in ops:
            if any(blocker(p, blocked) for p in dir_paths(op)):
                blocked.extend(dir_paths(op))
                continue
            action = apply.make_dir if isinstance(op, MakeDir) else apply.move_dir
            if not self._guard(op.rel_path, action, op):
                blocked.extend(dir_paths(op))
        return blocked

    def _clear_fixed(self) -> None:
        """Forget the pull failures of paths that did not fail in this pull."""
        fixed = [
            f.rel_path
            for f in self.ledger.failures(self.mapping_id)
            if f.operation == "download" and f.rel_path not in self._failed_paths
        ]
        self.ledger.clear_failures(self.mapping_id, fixed)

    def _restore(self, plan: PullPlan) -> None:
        asset_ids = sorted({a.asset_id for a in plan.restores})
        try:
            self.client.restore_assets(asset_ids)
        except (AuthenticationFailed, CompassUnreachable):
            raise
        except CompassError as exc:
            for asset_id in asset_ids:
                self.report.notice(f"asset {asset_id}", f"restore refused: {exc}")
            return
        log.info(
            "%s: asked Compass to restore %d archived assets (%s); they come down "
            "once restored",
            self.mapping.local_root,
            len(asset_ids),
            ", ".join(map(str, asset_ids[:10]))
            + (" ..." if len(asset_ids) > 10 else ""),
        )

    def _withhold(self, plan: PullPlan) -> None:
        for entry in plan.withholds:
            self.ledger.withhold(self.mapping_id, entry)
            log.info("%s: deleted here; kept in Compass", entry.rel_path)
        for folder, rel_path in plan.withheld_dirs:
            self.ledger.withhold(
                self.mapping_id, dir_entry(rel_path, folder), folder_only=True
            )
            log.info("%s: folder deleted here; kept in Compass", rel_path)
        self.report.count("withheld", len(plan.withholds) + len(plan.withheld_dirs))
        self.ledger.release_withheld(self.mapping_id, plan.released)

    def _pull_proxies(
        self, plan: PullPlan, root: SafeRoot, downloader: Downloader
    ) -> None:
        puller, proxy_plan = self._proxy_work(plan, root, downloader)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="proxy") as pool:
            puller.apply(proxy_plan, pool, self._guard_unless_stopping)

    def _proxy_work(
        self, plan: PullPlan, root: SafeRoot, downloader: Downloader
    ) -> tuple[ProxyPuller, ProxyPlan]:
        """The proxies to fetch, move and drop once the pull's plan is carried out."""
        puller = ProxyPuller(
            root=root,
            client=self.client,
            ledger=self.ledger,
            mapping_id=self.mapping_id,
            downloader=downloader,
            report=self.report,
            wanted=self.mapping.proxies,
        )
        proxy_plan = puller.plan(plan.placements)
        # Compass serves no file of an archived asset, proxies included: they are
        # fetched once it is restored. Nor of a folder the user may not download
        # from (the pull has noted it): those wait for the permission, and what is
        # already in the mirror stays.
        proxy_plan.fetches = [
            f
            for f in proxy_plan.fetches
            if not f.asset.archived and f.asset.folder_id not in plan.no_download
        ]
        return puller, proxy_plan

    def _sweep_temps(
        self, root: SafeRoot, local: LocalView, remote: RemoteTree
    ) -> None:
        """Remove unfinished downloads that will never be resumed: a temp name
        still linked to a placed file, a partial of an asset no longer under the
        mapping's folder (the listing is whole, or the pass would have stopped), of
        a version Compass has replaced since, or abandoned long ago. A partial of an
        asset that comes back is simply downloaded anew."""
        cutoff = (time.time() - STALE_TEMP_SECONDS) * 1e9
        listed = {a.asset_id for a in remote.assets}
        current = {
            a.asset_id: temp_name(source_key(a.asset_id, a.checksum))
            for a in remote.assets
            if a.checksum
        }
        for rel_path, mtime_ns in local.temps.items():
            name = rel_path.rpartition("/")[2]
            asset_id = source_asset_of(name)
            if rel_path in local.linked_temps:
                # Placing a download links the temp file to its name, then removes
                # the temp name: a run stopped in between left both names.
                why = "a second name of a file already in place"
            elif asset_id is not None and asset_id not in listed:
                why = "its asset is no longer in this folder in Compass"
            elif asset_id in current and current[asset_id] != name:
                why = "its asset has a newer version in Compass"
            elif mtime_ns < cutoff:
                why = "abandoned"
            else:
                continue
            with root.parent_of(rel_path) as (directory, temp):
                directory.unlink(temp)
            log.info("%s: unfinished download removed (%s)", rel_path, why)

    # -- per-path failures --------------------------------------------------------

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        rel_path: str,
        action: Callable[..., None],
        *args: object,
    ) -> Future[bool]:
        return pool.submit(in_context(self._transfer_guarded), rel_path, action, *args)

    def _transfer_guarded(
        self, rel_path: str, action: Callable[..., None], *args: object
    ) -> bool:
        """A transfer on the pool: skipped once stopping, counted for progress."""
        if self._stopping():
            return False
        done = self._guard(rel_path, action, *args)
        self.progress.file_done(rel_path, "pulled" if done else "failed")
        return done

    def _guard_unless_stopping(
        self, rel_path: str, action: Callable[..., None], *args: object
    ) -> bool:
        """A path's work, skipped once the pass is stopping."""
        if self._stopping():
            return False
        return self._guard(rel_path, action, *args)

    def _stopping(self) -> bool:
        """Whether to start no new work: a stop was asked, or Compass is gone."""
        return self.stop.is_set() or self._halted.is_set()

    def _halt(self, exc: CompassUnreachable) -> None:
        """Compass cannot be reached: stop this pass, saying so once."""
        if not self._halted.is_set():
            self._halted.set()
            log.error("%s: %s; the pass stops here", self.mapping.local_root, exc)
            self.report.fatal = f"Compass cannot be reached; the pass stopped: {exc}"
            self.report.fatal_logged = True

    def _guard(self, rel_path: str, action: Callable[..., None], *args: object) -> bool:
        """Run one path's work; record its failure instead of raising."""
        try:
            action(*args)
        except AuthenticationFailed:
            raise
        except CompassUnreachable as exc:
            self._halt(exc)
        except FileProblem as exc:
            self._failed(rel_path, exc.reason, permanent=exc.permanent)
        except CompassError as exc:
            self._failed(rel_path, str(exc), permanent=isinstance(exc, RequestRejected))
        except OSError as exc:
            doing = _DOING.get(getattr(action, "__name__", ""), "")
            reason = f"local error{doing}: {exc.strerror or exc}"
            self._failed(rel_path, reason, permanent=False)
        except LedgerError:
            raise
        except Exception as exc:
            # A bug must not stop the other files; keep the traceback for a report.
            log.exception("%s: unexpected error", rel_path)
            self._failed(rel_path, f"unexpected error: {exc!r}", permanent=False)
        else:
            return True
        return False

    def _failed(self, rel_path: str, reason: str, *, permanent: bool) -> None:
        # Warned about when it first happens (or says something new), not at every
        # pull that meets it again: `status` lists it meanwhile.
        with self._failures_lock:
            if self._known_failures is None:
                self._known_failures = {
                    f.rel_path: f.reason
                    for f in self.ledger.failures(self.mapping_id)
                    if f.operation == "download"
                }
            known = self._known_failures.get(rel_path) == reason
            self._known_failures[rel_path] = reason
            self._failed_paths.add(rel_path)
        if known:
            log.debug("%s: %s (still)", rel_path, reason)
        else:
            log.warning("%s: %s", rel_path, reason)
        self.report.fail(rel_path, reason, permanent=permanent)
        self.ledger.record_failure(
            self.mapping_id, rel_path, "download", reason, permanent=permanent
        )

    # -- dry run ---------------------------------------------------------------------

    def _describe(self, plan: PullPlan) -> None:
        """Fill the report with what the pass would do."""
        planned = self.report.planned
        for op in plan.dirs:
            label = "make folder" if isinstance(op, MakeDir) else "move folder"
            planned.append((label, op.rel_path))
        planned.extend(("move to trash", e.rel_path) for e in plan.trash)
        planned.extend(("forget", e.rel_path) for e in plan.forgets)
        planned.extend(("keep deleted", e.rel_path) for e in plan.withholds)
        planned.extend(
            ("rename", f"{m.old_rel_path} -> {m.entry.rel_path}") for m in plan.moves
        )
        planned.extend((f"download ({f.kind})", f.rel_path) for f in plan.fetches)
        planned.extend(("keep both (conflict)", c.rel_path) for c in plan.conflicts)
        planned.extend(("remove emptied folder", e.rel_path) for e in plan.dir_removals)
        for notice in plan.notices:
            self.report.notice(notice.subject, notice.reason)

    def _describe_proxies(self, proxies: ProxyPlan) -> None:
        planned = self.report.planned
        planned.extend(
            ("move proxy", f"{record.rel_path} -> {target}")
            for record, target in proxies.moves
        )
        planned.extend(("remove proxy", record.rel_path) for record in proxies.drops)
        planned.extend(("download proxy", fetch.rel_path) for fetch in proxies.fetches)


def _join(futures: Sequence[Future[bool]]) -> None:
    """Wait for every future; re-raise the first error that escaped its guard."""
    wait(futures)
    for future in futures:
        future.result()

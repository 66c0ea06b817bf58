"""Plan a pull: compare the remote tree, the synced tree and the disk; emit operations.

A pure function of its inputs — no network, disk or clock — so every decision can be
tested with lists in and operations out. The rules it keeps:

- an unsynced local change is never overwritten or removed: when both sides changed,
  the remote version becomes a conflict copy beside the local file;
- the agent's own uploads never come back down (the ledger holds their checksum, and
  uploads in flight are left alone), and its downloads are recorded with the stat the
  upload pass compares, so they never go back up;
- remote names are made safe and unique (`names.py`); a name once given stays while
  the remote name does;
- removals move files to the trash (or forget them), never delete them.

Operation paths are those after the folder moves of the same plan, which are carried
out first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from syncagent.engine.filters import PathFilter
from syncagent.engine.local_view import LocalView
from syncagent.engine.pull_naming import NamingSteps
from syncagent.engine.pull_ops import (
    AssetKey,
    Notice,
    PullOptions,
    PullPlan,
    join,
    key_of,
    same_stat,
)
from syncagent.engine.pull_placing import PlacingSteps
from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder, RemoteTree
from syncagent.ledger.records import EntryRecord


# Pull planning's public face: `plan_pull` and the plan's types (from `pull_ops`).
def plan_pull(
    remote: RemoteTree,
    synced: Mapping[str, EntryRecord],
    local: LocalView,
    *,
    rules: PathFilter,
    options: PullOptions,
    withheld: Mapping[AssetKey, str | None] | None = None,
    in_flight: Collection[int] = (),
    local_md5: Mapping[str, str] | None = None,
) -> PullPlan:
    """Decide what to make, move, download, record, trash and report.

    `withheld` holds what was deleted here and kept in Compass (asset key to the
    checksum then); `in_flight` the asset IDs of uploads under way; `local_md5` the
    content of changed local files, which the plan asks for in `needs_hash` and which
    a second call then uses.
    """
    if options.proxies_only:
        synced, local = {}, LocalView()
    planner = _Planner(
        remote,
        synced,
        local,
        rules=rules,
        options=options,
        withheld=withheld or {},
        in_flight=in_flight,
        local_md5=local_md5,
    )
    return planner.run()


class _Planner(PlacingSteps, NamingSteps):
    """One planning run; the steps share the trees and the growing plan."""

    def run(self) -> PullPlan:
        # Step: pair ledger entries with what Compass holds now.
        self._match()
        self._decide_leftovers()

        # Step: walk the remote tree top-down, naming and placing everything.
        self._walk(self.remote.root_id, "", skipped=False)

        # Step: settle what Compass no longer holds, now that paths are final.
        self._settle_leftovers()
        self._release_withheld()
        self._finalize_paths()
        if self.options.proxies_only:
            # Restores stay: an archived asset's proxies come once it is restored.
            kept = self.plan
            self.plan = PullPlan(
                placements=kept.placements, notices=kept.notices, restores=kept.restores
            )
        self.plan.no_download = {
            f.folder_id for f in self.remote.folders.values() if not f.downloadable
        }
        return self.plan

    # -- matching -----------------------------------------------------------------

    def _match(self) -> None:
        """Entries by folder (directories) and by (folder, asset) (files)."""
        for entry in self.synced.values():
            if entry.kind == "dir" and entry.folder_id is not None and entry.rel_path:
                self.dir_entries[entry.folder_id] = entry
            elif entry.kind == "file" and entry.asset_id is not None:
                self.asset_entries[(entry.folder_id or 0, entry.asset_id)] = entry
        present = {(a.folder_id, a.asset_id) for a in self.remote.assets}
        unmatched = [e for k, e in self.asset_entries.items() if k not in present]

        # An asset that left one folder of the tree for another is moved, not
        # trashed and downloaded again.
        arrivals: dict[int, list[RemoteAsset]] = {}
        for asset in self.remote.assets:
            if (asset.folder_id, asset.asset_id) not in self.asset_entries:
                arrivals.setdefault(asset.asset_id, []).append(asset)
        for entry in sorted(unmatched, key=lambda e: e.rel_path):
            assert entry.asset_id is not None
            landed = arrivals.get(entry.asset_id)
            if landed:
                asset = landed.pop(0)
                del self.asset_entries[(entry.folder_id or 0, entry.asset_id)]
                self.asset_entries[(asset.folder_id, asset.asset_id)] = entry
            else:
                self.leftovers.append(entry)

    def _decide_leftovers(self) -> None:
        """Files whose asset is gone: trashed names are free for this pass."""
        for entry in self.leftovers:
            if self.options.trash_removed and same_stat(
                self.local.files.get(entry.rel_path), entry
            ):
                self.vacated.add(entry.rel_path)

    # -- the walk -----------------------------------------------------------------

    def _walk(self, folder_id: int, rel_dir: str, *, skipped: bool) -> None:
        folders = self.remote.children(folder_id)
        assets = self.assets_in.get(folder_id, [])
        if skipped:
            self._skip_subtree(folders, assets)
            return
        names = self._name_children(rel_dir, folders, assets)
        for asset in assets:
            name = names.get(("asset", asset.asset_id))
            if name is not None:  # else it is not placed in this pull
                self._place_asset(asset, join(rel_dir, name))
        for folder in folders:
            target = join(rel_dir, names[("folder", folder.folder_id)])
            if self._unlistable(folder):
                continue
            skip = self._place_folder(folder, target)
            self._walk(folder.folder_id, target, skipped=skip)

    def _unlistable(self, folder: RemoteFolder) -> bool:
        """Two-way: a synced directory that cannot be listed now (no permission, a
        share gone away) is left as it is, with everything below it; it is neither
        a local delete to keep nor a folder to fill."""
        entry = self.dir_entries.get(folder.folder_id)
        if not (self.options.two_way and entry is not None):
            return False
        if entry.rel_path not in self.local.others:
            return False
        reason = "cannot be listed here; left as it is until it can"
        self.plan.notices.append(Notice(entry.rel_path, reason))
        return True

    def _skip_subtree(
        self, folders: list[RemoteFolder], assets: list[RemoteAsset]
    ) -> None:
        """An excluded or withheld folder: settle what the ledger had below it."""
        for asset in assets:
            entry = self.asset_entries.get(key_of(asset))
            if entry is not None:
                self._set_aside(entry)
        for folder in folders:
            entry = self.dir_entries.get(folder.folder_id)
            if entry is not None:
                self.plan.forgets.append(entry)
            self._walk(folder.folder_id, "", skipped=True)

    def _set_aside(self, entry: EntryRecord) -> None:
        """Forget an entry; one deleted here in two-way is withheld (or left to the
        upload pass to remove from Compass)."""
        gone = entry.rel_path not in self.local.files
        if not (gone and self.options.two_way):
            self.plan.forgets.append(entry)
        elif not self.options.remove_local_deletes:
            self.plan.withholds.append(entry)

    # -- what Compass no longer holds -------------------------------------------------

    def _settle_leftovers(self) -> None:
        for entry in self.leftovers:
            if entry.rel_path in self.vacated:
                self.plan.trash.append(entry)
                continue
            self.plan.forgets.append(entry)
            local = self.local.files.get(entry.rel_path)
            if local is not None and not same_stat(local, entry):
                reason = "removed in Compass but changed here; kept"
                self.plan.notices.append(
                    Notice(self._translated(entry.rel_path), reason)
                )
        gone = [
            entry
            for folder_id, entry in self.dir_entries.items()
            if folder_id not in self.remote.folders
        ]
        for entry in sorted(gone, key=lambda e: -e.rel_path.count("/")):
            if self.options.trash_removed:
                self.plan.dir_removals.append(entry)
            else:
                self.plan.forgets.append(entry)

    def _release_withheld(self) -> None:
        present = {key_of(a) for a in self.remote.assets}
        present |= {(f, 0) for f in self.remote.folders}
        self.plan.released += [k for k in self.withheld if k not in present]

    # -- paths after the folder moves ----------------------------------------------

    def _finalize_paths(self) -> None:
        """File operations run after the folder moves: give them the paths then."""
        plan, moved = self.plan, self._moved
        plan.trash = [moved(e) for e in plan.trash]
        plan.forgets = [moved(e) for e in plan.forgets]
        plan.withholds = [moved(e) for e in plan.withholds]
        plan.dir_removals = [moved(e) for e in plan.dir_removals]
        plan.withheld_dirs = [(f, self._translated(p)) for f, p in plan.withheld_dirs]
        plan.moves = [
            replace(m, old_rel_path=self._translated(m.old_rel_path))
            for m in sorted(
                plan.moves, key=lambda m: self.name_order.get(m.entry.rel_path, -1)
            )
        ]
        plan.fetches = [
            replace(f, forget=self._translated(f.forget)) if f.forget else f
            for f in plan.fetches
        ]

    def _moved(self, entry: EntryRecord) -> EntryRecord:
        return replace(entry, rel_path=self._translated(entry.rel_path))

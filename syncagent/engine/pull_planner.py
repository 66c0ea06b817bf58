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

import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from syncagent.engine.filters import PathFilter
from syncagent.engine.local_view import FileNames, LocalView, file_names
from syncagent.engine.names import NameSpace, is_tagged, name_key, safe_name
from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder, RemoteTree
from syncagent.engine.scanner import LocalFile
from syncagent.ledger.records import EntryRecord

# (folder_id, asset_id); a folder itself is withheld as (folder_id, 0).
AssetKey = tuple[int, int]
# A child of a remote folder: kind ('folder' or 'asset'), ID, remote name, entry.
_Child = tuple[str, int, str, "EntryRecord | None"]


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


class _Naming:
    """The naming of one directory's children: the names in use, those given, and
    the names files of the directory are leaving in this pull."""

    def __init__(
        self, rel_dir: str, space: NameSpace, assets: list[RemoteAsset]
    ) -> None:
        self.rel_dir = rel_dir
        self.space = space
        self.by_id = {a.asset_id: a for a in assets}
        self.names: dict[tuple[str, int], str] = {}
        self.leaving: dict[str, int] = {}


class _Planner:
    """One planning run; the steps share the trees and the growing plan."""

    def __init__(
        self,
        remote: RemoteTree,
        synced: Mapping[str, EntryRecord],
        local: LocalView,
        *,
        rules: PathFilter,
        options: PullOptions,
        withheld: Mapping[AssetKey, str | None],
        in_flight: Collection[int],
        local_md5: Mapping[str, str] | None,
    ) -> None:
        self.remote = remote
        self.synced = synced
        self.local = local
        self.rules = rules
        self.options = options
        self.withheld = dict(withheld)
        self.in_flight = set(in_flight)
        self.local_md5 = local_md5 or {}
        self.plan = PullPlan()
        self.moved: list[tuple[str, str]] = []
        self.origin: dict[str, str | None] = {"": ""}
        self.dir_entries: dict[int, EntryRecord] = {}
        self.asset_entries: dict[AssetKey, EntryRecord] = {}
        self.leftovers: list[EntryRecord] = []
        self.vacated: set[str] = set()
        self.adopted: dict[AssetKey, LocalFile] = {}
        self.adopted_paths: set[str] = set()
        self.file_names: dict[str, FileNames] = {}
        self.name_order: dict[str, int] = {}
        self._unknown_by_identity: dict[tuple[int, int, int], str] | None = None
        self.assets_in: dict[int, list[RemoteAsset]] = {}
        for asset in sorted(remote.assets, key=lambda a: a.asset_id):
            self.assets_in.setdefault(asset.folder_id, []).append(asset)
        self.synced_in: dict[str, list[str]] = {}
        for rel_path in synced:
            if rel_path:
                self.synced_in.setdefault(parent_of(rel_path), []).append(rel_path)

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
            self._place_asset(asset, join(rel_dir, names[("asset", asset.asset_id)]))
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
            entry = self.asset_entries.get(_key_of(asset))
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

    # -- names ----------------------------------------------------------------------

    def _name_children(
        self, rel_dir: str, folders: list[RemoteFolder], assets: list[RemoteAsset]
    ) -> dict[tuple[str, int], str]:
        """A safe, unique local name for every child of one remote folder."""
        naming = _Naming(rel_dir, self._space_of(rel_dir), assets)
        space, names = naming.space, naming.names
        pending: list[_Child] = []
        tagged_now: list[tuple[_Child, str]] = []
        for child in self._children(folders, assets):
            kind, item_id, name, entry = child
            if entry is None or not self._stays(entry, rel_dir, name):
                pending.append(child)
                continue
            kept = entry.rel_path.rpartition("/")[2]
            space.owners[name_key(kept)] = "claimed"
            names[(kind, item_id)] = self._named(rel_dir, kept)
            plain = safe_name(name)
            if is_tagged(kept, plain, f"{kind} {item_id}", is_dir=kind == "folder"):
                tagged_now.append((child, plain))

        # A tag given because a name was taken goes once that name is free again.
        for (kind, item_id, _, _), plain in tagged_now:
            if space.owner(plain) is None and not self._vacated_in(rel_dir, plain):
                space.owners[name_key(plain)] = "claimed"
                names[(kind, item_id)] = self._named(rel_dir, plain)

        self._name_pending(naming, pending)
        return names

    def _name_pending(self, naming: _Naming, pending: list[_Child]) -> None:
        """Name what is new or renamed. A name that a file of this directory leaves
        in this pull (renamed in Compass) goes to another asset only once that file
        has its new name, so a chain of renames ends with no tag; a cycle of renames
        keeps one tag until the next pull."""
        naming.leaving = self._leaving(naming.rel_dir, pending, naming.by_id)
        waiting = pending
        while waiting:
            blocked: list[_Child] = []
            for child in waiting:
                holder = naming.leaving.get(name_key(safe_name(child[2])))
                if child[0] == "asset" and holder not in (None, child[1]):
                    blocked.append(child)
                    continue
                self._name_one(naming, child)
            if len(blocked) == len(waiting):
                self._name_one(naming, blocked.pop(0))
            waiting = blocked

    def _name_one(self, naming: _Naming, child: _Child) -> None:
        kind, item_id, name, entry = child
        rel_dir, space, leaving = naming.rel_dir, naming.space, naming.leaving
        wanted = safe_name(name)
        chosen: str | None = None
        if entry is not None and self._renamed_in_place(entry, rel_dir, wanted):
            chosen = wanted
        elif kind == "asset" and entry is None:
            chosen = self._adopts(naming.by_id[item_id], rel_dir, wanted)
        if chosen is not None:
            space.owners[name_key(chosen)] = "claimed"
        else:
            chosen = space.claim(wanted, f"{kind} {item_id}", is_dir=kind == "folder")
        naming.names[(kind, item_id)] = self._named(rel_dir, chosen)
        old_key = _key_of_path(entry.rel_path) if entry is not None else ""
        if leaving.get(old_key) == item_id:
            del leaving[old_key]
            if old_key != name_key(chosen):
                # The file moves away before anything moves in (moves run in order).
                space.owners.pop(old_key, None)

    def _leaving(
        self, rel_dir: str, pending: list[_Child], by_id: dict[int, RemoteAsset]
    ) -> dict[str, int]:
        """The names (folded) that files of this directory leave for another name in
        it, with the asset leaving each; a name another file shares is not left."""
        origin = self.origin.get(rel_dir)
        if origin is None:
            return {}
        leaving: dict[str, int] = {}
        for kind, item_id, name, entry in pending:
            if kind != "asset" or entry is None or parent_of(entry.rel_path) != origin:
                continue
            asset, wanted = by_id[item_id], safe_name(name)
            moves = (
                entry.rel_path in self.local.files
                and asset.ready
                and asset.asset_id not in self.in_flight
                and self.rules.includes_file(join(rel_dir, wanted))
                and not self._renamed_in_place(entry, rel_dir, wanted)
            )
            if moves:
                leaving[_key_of_path(entry.rel_path)] = item_id
        if leaving:
            shared = Counter(name_key(n) for n in self._names_at(origin))
            leaving = {k: v for k, v in leaving.items() if shared[k] == 1}
        return leaving

    def _names_at(self, origin: str) -> set[str]:
        """Every name a directory holds on disk or in the ledger."""
        held = set(self.local.names_in(origin))
        held.update(p.rpartition("/")[2] for p in self.synced_in.get(origin, []))
        return held

    def _vacated_in(self, rel_dir: str, name: str) -> bool:
        """Whether a name is free only once this pull has trashed its file."""
        origin = self.origin.get(rel_dir)
        return origin is not None and join(origin, name) in self.vacated

    def _named(self, rel_dir: str, name: str) -> str:
        """Note the order names are given in: file moves are carried out in it."""
        self.name_order[join(rel_dir, name)] = len(self.name_order)
        return name

    def _adopts(self, asset: RemoteAsset, rel_dir: str, wanted: str) -> str | None:
        """The unknown local file that already holds exactly this asset's bytes.

        That is a run that stopped between placing a download and recording it, a
        mirror seeded by hand, or a lost ledger: it is recorded, not downloaded (nor
        uploaded) again. The file has the asset's name (in any Unicode normal form)
        or the name a pull gives it when that is taken (`photo (asset 7).jpg`).
        """
        origin = self.origin.get(rel_dir)
        if origin is None or not asset.ready or asset.asset_id in self.in_flight:
            return None
        for name in self._adoptable(origin, wanted, asset.asset_id):
            path = join(origin, name)
            local = self.local.files[path]
            if path in self.synced or path in self.adopted_paths:
                continue
            if local.size != asset.size:
                continue
            content = self.local_md5.get(path)
            if content is None:
                self.plan.needs_hash.append(path)
            elif content == asset.checksum:
                self.adopted[_key_of(asset)] = local
                self.adopted_paths.add(path)
                return name
        return None

    def _adoptable(self, origin: str, wanted: str, asset_id: int) -> list[str]:
        """Local file names of a directory that a pull would give this asset."""
        index = self.file_names.get(origin)
        if index is None:
            index = self.file_names[origin] = file_names(self.local, origin)
        found = list(index.by_nfc.get(wanted, []))
        tag = f"asset {asset_id}"
        found += [
            n
            for n in index.by_asset.get(asset_id, [])
            if is_tagged(unicodedata.normalize("NFC", n), wanted, tag)
        ]
        return found

    def _renamed_in_place(self, entry: EntryRecord, rel_dir: str, wanted: str) -> bool:
        """A rename that only changes case or normalisation keeps its own slot."""
        old_name = entry.rel_path.rpartition("/")[2]
        return parent_of(entry.rel_path) == self.origin.get(rel_dir) and name_key(
            old_name
        ) == name_key(wanted)

    def _children(
        self, folders: list[RemoteFolder], assets: list[RemoteAsset]
    ) -> list[_Child]:
        found: list[_Child] = [
            ("folder", f.folder_id, f.name, self.dir_entries.get(f.folder_id))
            for f in folders
        ]
        found += [
            ("asset", a.asset_id, a.name, self.asset_entries.get(_key_of(a)))
            for a in assets
        ]
        return found

    def _stays(self, entry: EntryRecord, rel_dir: str, name: str) -> bool:
        """Whether an entry keeps its name: same remote name, same directory."""
        return (
            entry.remote_name == name
            and parent_of(entry.rel_path) == self.origin.get(rel_dir)
            and self.origin.get(rel_dir) is not None
        )

    def _space_of(self, rel_dir: str) -> NameSpace:
        """The names already used in a directory: on disk, or by the ledger."""
        space = NameSpace()
        origin = self.origin.get(rel_dir)
        if origin is None:
            return space
        for name, kind in self.local.names_in(origin).items():
            path = join(origin, name)
            if path in self.vacated:
                continue
            space.hold(name, "known" if path in self.synced else kind)
        for path in self.synced_in.get(origin, []):
            if path not in self.vacated:
                space.hold(path.rpartition("/")[2], "known")
        return space

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
        key = _key_of(asset)
        entry = self.asset_entries.get(key)
        if entry is None:
            self._place_new(asset, target)
            return
        if self.rules.excludes(target) or not self.rules.includes_file(target):
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

    def _place_new(self, asset: RemoteAsset, target: str) -> None:
        key = _key_of(asset)
        if asset.asset_id in self.in_flight or not asset.ready:
            return
        if self.rules.excludes(target) or not self.rules.includes_file(target):
            return
        withheld = self.withheld.get(key, "")
        if withheld == asset.checksum:
            return
        if withheld != "":
            self.plan.released.append(key)
        self.plan.placements[key] = (target, asset)
        local = self.adopted.get(key)
        if local is not None:
            self.plan.records.append(Record(_adopted(target, asset, local)))
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
            self.plan.placements.pop(_key_of(asset), None)
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
            self.plan.placements.pop(_key_of(asset), None)

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
        if self.options.restore_archived:
            self.plan.restores.append(asset)
            reason = "archived in Compass; restore asked, pulled once restored"
        else:
            reason = (
                "archived in Compass; skipped (restore_archived = true restores it)"
            )
        self.plan.notices.append(Notice(rel_path, f"asset {asset.asset_id} {reason}"))

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
        present = {_key_of(a) for a in self.remote.assets}
        present |= {(f, 0) for f in self.remote.folders}
        self.plan.released += [k for k in self.withheld if k not in present]

    # -- paths after the folder moves ----------------------------------------------

    def _translated(self, rel_path: str) -> str:
        """Where a path (as it was before the pass) is once every folder moved."""
        for old, new in self.moved:
            if rel_path == old:
                rel_path = new
            elif rel_path.startswith(old + "/"):
                rel_path = new + rel_path[len(old) :]
        return rel_path

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


def _key_of(asset: RemoteAsset) -> AssetKey:
    return (asset.folder_id, asset.asset_id)


def _key_of_path(rel_path: str) -> str:
    """The folded key of a path's last component."""
    return name_key(rel_path.rpartition("/")[2])


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


def _adopted(rel_path: str, asset: RemoteAsset, local: LocalFile) -> EntryRecord:
    """The entry of a local file found to hold an asset's bytes already."""
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
        origin="remote",
    )

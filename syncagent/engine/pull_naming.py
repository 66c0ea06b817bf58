"""Local names for the children of a remote folder: safe, unique, kept while the
remote name stays, and given in an order that lets a chain of renames end untagged."""

from __future__ import annotations

import unicodedata
from collections import Counter

from syncagent.engine.local_view import file_names
from syncagent.engine.names import NameSpace, is_tagged, name_key, safe_name
from syncagent.engine.pull_ops import Notice, join, key_of, parent_of
from syncagent.engine.pull_state import PlannerState
from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder
from syncagent.ledger.records import EntryRecord

# A child of a remote folder: kind ('folder' or 'asset'), ID, remote name, entry.
_Child = tuple[str, int, str, "EntryRecord | None"]


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


class NamingSteps(PlannerState):
    """Names the children of each remote folder on the way down the tree."""

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
            holder = space.owner(wanted)
            chosen = space.claim(wanted, f"{kind} {item_id}", is_dir=kind == "folder")
            if kind == "asset" and entry is None and holder == "file":
                self._note_name_twin(join(rel_dir, wanted), chosen, item_id)
        naming.names[(kind, item_id)] = self._named(rel_dir, chosen)
        old_key = _key_of_path(entry.rel_path) if entry is not None else ""
        if leaving.get(old_key) == item_id:
            del leaving[old_key]
            if old_key != name_key(chosen):
                # The file moves away before anything moves in (moves run in order).
                space.owners.pop(old_key, None)

    def _note_name_twin(self, rel_path: str, chosen: str, asset_id: int) -> None:
        """Two-way: a file here that Compass never had and an asset of the same name
        with other bytes both stay; say so, as Compass then holds the name twice."""
        if not self.options.two_way:
            return
        reason = (
            f"Compass has another file of this name (asset {asset_id}), brought "
            f"down as {chosen!r}; this file goes up beside it as a second asset of "
            "the same name (rename one of them to tell them apart)"
        )
        self.plan.notices.append(Notice(rel_path, reason))

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
                self.adopted[key_of(asset)] = local
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
        for asset in assets:
            entry = self.asset_entries.get(key_of(asset))
            if entry is None and not self._placeable(asset):
                # Not placed in this pull, it takes no name: another asset of that
                # name would come down tagged now and be renamed once this one is.
                continue
            found.append(("asset", asset.asset_id, asset.name, entry))
        return found

    def _placeable(self, asset: RemoteAsset) -> bool:
        """Whether a new asset can come down now: complete, and not our upload."""
        return asset.ready and asset.asset_id not in self.in_flight

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


def _key_of_path(rel_path: str) -> str:
    """The folded key of a path's last component."""
    return name_key(rel_path.rpartition("/")[2])

"""The working state of one pull-planning run, which its steps (naming, placing,
settling) share."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from syncagent.engine.filters import PathFilter
from syncagent.engine.local_view import FileNames, LocalView
from syncagent.engine.pull_ops import AssetKey, PullOptions, PullPlan, parent_of
from syncagent.engine.remote_tree import RemoteAsset, RemoteTree
from syncagent.engine.scanner import LocalFile
from syncagent.ledger.records import EntryRecord


class PlannerState:
    """One planning run's state: the inputs, indexed; the entries paired with what
    Compass holds; the names given and the growing plan. The steps build on it."""

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

    # -- paths after the folder moves ----------------------------------------------

    def _translated(self, rel_path: str) -> str:
        """Where a path (as it was before the pass) is once every folder moved."""
        for old, new in self.moved:
            if rel_path == old:
                rel_path = new
            elif rel_path.startswith(old + "/"):
                rel_path = new + rel_path[len(old) :]
        return rel_path

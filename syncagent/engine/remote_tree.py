"""The remote tree of a mapping: its folders, recursively, and the assets in each.

Folders come from the subfolders call, assets from search (every page), and then the
batch details call decides which assets are in which folder, with their checksum,
status and archive flag. Asking details for the assets the ledger knows as well means
an asset a search page skipped (pages shift while they are read) is never taken for a
removed one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from syncagent.compass import AssetItem, CompassClient

log = logging.getLogger(__name__)

MAX_FOLDERS = 100_000


@dataclass(frozen=True)
class RemoteFolder:
    """A folder of the remote tree; the mapping's own folder has no parent."""

    folder_id: int
    parent_id: int | None
    name: str
    downloadable: bool = True


@dataclass(frozen=True)
class RemoteAsset:
    """An asset as it sits in one folder of the remote tree."""

    asset_id: int
    folder_id: int
    name: str
    checksum: str | None
    size: int | None = None
    status: str | None = "complete"
    updated_at: datetime | None = None
    archived: bool = False
    restoring: bool = False

    @property
    def ready(self) -> bool:
        """Whether its file is uploaded completely and has a checksum."""
        return self.status == "complete" and bool(self.checksum)


@dataclass
class RemoteTree:
    """What Compass holds under a mapping's folder now."""

    root_id: int
    folders: dict[int, RemoteFolder] = field(default_factory=dict)
    assets: list[RemoteAsset] = field(default_factory=list)
    _children: dict[int, list[RemoteFolder]] | None = field(default=None, repr=False)
    _indexed: dict[int, RemoteFolder] = field(default_factory=dict, repr=False)

    def children(self, folder_id: int) -> list[RemoteFolder]:
        """The subfolders of a folder, by ID."""
        if self._children is None or len(self._indexed) != len(self.folders):
            self._indexed = dict(self.folders)
            self._children = {}
            for folder in sorted(self.folders.values(), key=lambda f: f.folder_id):
                if folder.parent_id is not None:
                    self._children.setdefault(folder.parent_id, []).append(folder)
        return self._children.get(folder_id, [])


def list_remote_tree(
    client: CompassClient, root_id: int, known_asset_ids: Iterable[int] = ()
) -> RemoteTree:
    """Read the folders and assets under `root_id`.

    Raises CompassError when any part cannot be read: a partial tree would make
    present assets look removed.
    """
    tree = RemoteTree(root_id)
    root = client.list_subfolders(root_id)
    tree.folders[root_id] = RemoteFolder(
        root_id, None, root.name, root.permissions.download
    )
    listed: dict[int, set[int]] = {}
    pending = [(root_id, root.subfolders)]
    while pending:
        folder_id, subfolders = pending.pop()
        for asset in client.list_folder_assets(folder_id):
            listed.setdefault(asset.asset_id, set()).add(folder_id)
        for sub in subfolders:
            if sub.folder_id in tree.folders or len(tree.folders) >= MAX_FOLDERS:
                continue
            tree.folders[sub.folder_id] = RemoteFolder(
                sub.folder_id, folder_id, sub.name, sub.permissions.download
            )
            below = (
                client.list_subfolders(sub.folder_id).subfolders
                if sub.has_children
                else []
            )
            pending.append((sub.folder_id, below))

    wanted = sorted(set(listed) | set(known_asset_ids))
    for item in client.get_assets(wanted):
        # Details say which folders hold an asset; search is the fallback.
        folder_ids = set(item.folder_ids) or listed.get(item.asset_id, set())
        tree.assets.extend(_placed(item, folder_ids, tree.folders))
    log.debug(
        "folder %d: %d folders, %d assets", root_id, len(tree.folders), len(tree.assets)
    )
    return tree


def _placed(
    item: AssetItem, folder_ids: set[int], folders: dict[int, RemoteFolder]
) -> list[RemoteAsset]:
    return [
        RemoteAsset(
            asset_id=item.asset_id,
            folder_id=folder_id,
            name=item.name,
            checksum=item.checksum,
            size=item.size,
            status=item.status,
            updated_at=item.updated_at,
            archived=item.archived,
            restoring=item.restoring,
        )
        for folder_id in sorted(folder_ids)
        if folder_id in folders
    ]

"""Map local directories to Compass folders, finding or creating them top-down."""

from __future__ import annotations

import logging
from typing import Literal

from syncagent.compass import AmbiguousResult, CompassClient, InvalidRequest, NotFound
from syncagent.engine.planner import parent_of
from syncagent.ledger import EntryRecord, Ledger

log = logging.getLogger(__name__)


def folder_refusal(
    client: CompassClient, folder_id: int, need: Literal["upload", "download"]
) -> str | None:
    """Why a mapping's Compass folder cannot serve its passes, or None if it can."""
    user = client.session.username
    try:
        listing = client.list_subfolders(folder_id)
    except NotFound:
        return (
            f"Compass folder {folder_id} does not exist or is not visible to user "
            f"{user!r}"
        )
    if not getattr(listing.permissions, need):
        verb = "upload to" if need == "upload" else "download from"
        return (
            f"user {user!r} may not {verb} Compass folder {folder_id} ({listing.name})"
        )
    return None


class FolderMap:
    """The Compass folder of each local directory of one mapping."""

    def __init__(
        self,
        client: CompassClient,
        ledger: Ledger,
        mapping_id: int,
        root_folder_id: int,
        known: dict[str, EntryRecord],
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.mapping_id = mapping_id
        self.folder_ids: dict[str, int] = {"": root_folder_id}
        for rel_path, entry in known.items():
            if entry.kind == "dir" and entry.folder_id is not None:
                self.folder_ids[rel_path] = entry.folder_id
        self._listings: dict[int, dict[str, int]] = {}
        self.created: set[int] = set()
        """Folders this map created: they hold no assets yet."""

    def folder_of(self, rel_dir: str) -> int | None:
        """The Compass folder of a local directory, if it is known."""
        return self.folder_ids.get(rel_dir)

    def lookup(self, rel_dir: str) -> int | None:
        """The Compass folder of a local directory if it exists there; creates and
        records nothing (for a dry run)."""
        known = self.folder_ids.get(rel_dir)
        if known is not None or not rel_dir:
            return known
        parent_id = self.lookup(parent_of(rel_dir))
        if parent_id is None:
            return None
        return self._find(parent_id, rel_dir.rsplit("/", 1)[-1])

    def ensure(self, rel_dir: str) -> int:
        """The Compass folder of a local directory, found or created with its parents.

        Raises CompassError when a folder can be neither found nor created.
        """
        known = self.folder_ids.get(rel_dir)
        if known is not None:
            return known
        parent_id = self.ensure(parent_of(rel_dir))
        name = rel_dir.rsplit("/", 1)[-1]
        folder_id = self._find(parent_id, name)
        if folder_id is None:
            folder_id = self._create(parent_id, name)
            self.created.add(folder_id)
            log.info("%s: made Compass folder %d", rel_dir, folder_id)
        self.folder_ids[rel_dir] = folder_id
        self.ledger.put_entry(
            self.mapping_id,
            EntryRecord(
                rel_path=rel_dir,
                kind="dir",
                folder_id=folder_id,
                asset_id=None,
                remote_name=name,
                size=None,
                mtime_ns=None,
                inode=None,
                checksum=None,
            ),
        )
        return folder_id

    def _find(self, parent_id: int, name: str, *, fresh: bool = False) -> int | None:
        if fresh or parent_id not in self._listings:
            listing = self.client.list_subfolders(parent_id)
            self._listings[parent_id] = {
                f.name: f.folder_id for f in listing.subfolders
            }
        return self._listings[parent_id].get(name)

    def _create(self, parent_id: int, name: str) -> int:
        try:
            folder_id = self.client.create_folder(name, parent_id)
        except (AmbiguousResult, InvalidRequest):
            # Created by a lost answer, or by someone else meanwhile? Look again.
            found = self._find(parent_id, name, fresh=True)
            if found is None:
                raise
            return found
        self._listings.setdefault(parent_id, {})[name] = folder_id
        return folder_id

"""Adopt, rather than upload again, the new files that Compass already holds.

A file the ledger does not know may already be in Compass: the ledger was lost or
replaced, the folder was moved, or the file was excluded for a while. An asset in the
file's folder with its name, its size and its MD5, complete and known to no entry of a
live mapping, is that file.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from syncagent.compass import AssetItem, CompassClient
from syncagent.engine.hashing import md5_of_file
from syncagent.engine.planner import parent_of
from syncagent.engine.scanner import LocalFile
from syncagent.ledger import EntryRecord, Ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adopted:
    """A new file found in Compass, ready to be recorded as synced."""

    local: LocalFile
    entry: EntryRecord


class Adopter:
    """Matches new files of one mapping with unclaimed assets in their folders."""

    def __init__(
        self,
        client: CompassClient,
        ledger: Ledger,
        mapping_id: int,
        root: Path,
        count_read: Callable[[int], None],
        *,
        configured_roots: Collection[str] = (),
    ) -> None:
        self.client = client
        self.configured_roots = set(configured_roots)
        self.ledger = ledger
        self.mapping_id = mapping_id
        self.root = root
        self.count_read = count_read

    def find(
        self,
        new_files: Sequence[LocalFile],
        folder_of: Callable[[str], int | None],
        fresh_folders: set[int],
    ) -> tuple[list[Adopted], list[LocalFile]]:
        """The new files Compass already holds, and the ones still to upload.

        Folders made in this pass (`fresh_folders`) hold nothing, so they are not
        listed.
        """
        candidates = self._same_name_assets(new_files, folder_of, fresh_folders)
        if not candidates:
            return [], list(new_files)
        claimed = self.ledger.claimed_asset_ids(*self._live_mappings())
        wanted = sorted({a for _, ids in candidates.values() for a in ids} - claimed)
        details = {a.asset_id: a for a in self.client.get_assets(wanted)}
        adopted: list[Adopted] = []
        remaining: list[LocalFile] = []
        for local in new_files:
            folder_id, ids = candidates.get(local.rel_path, (0, []))
            assets = [
                details[a]
                for a in ids
                if a in details
                and a not in claimed
                and details[a].status == "complete"
                and details[a].size == local.size
            ]
            found = self._match(local, folder_id, assets) if assets else None
            if found is None:
                remaining.append(local)
            else:
                claimed.add(found.entry.asset_id or 0)
                adopted.append(found)
        return adopted, remaining

    def _live_mappings(self) -> list[int]:
        """The mappings whose claims stand: this one, every mapping of the current
        configuration (a root that is missing may be a share not mounted yet), and
        any other whose root still exists.

        An asset known to another live mapping is that mapping's file, never this
        one's; the claims of a root that is gone from the disk and from the
        configuration (moved, renamed) are stale, so its files found under their new
        root are adopted rather than uploaded again.
        """
        return [
            mapping_id
            for mapping_id, local_root in self.ledger.mappings().items()
            if mapping_id == self.mapping_id
            or local_root in self.configured_roots
            or os.path.isdir(local_root)
        ]

    def _same_name_assets(
        self,
        new_files: Sequence[LocalFile],
        folder_of: Callable[[str], int | None],
        fresh_folders: set[int],
    ) -> dict[str, tuple[int, list[int]]]:
        """For each new file, its folder and the assets there with its name."""
        by_folder: dict[int, list[LocalFile]] = {}
        for local in new_files:
            folder_id = folder_of(parent_of(local.rel_path))
            if folder_id is not None and folder_id not in fresh_folders:
                by_folder.setdefault(folder_id, []).append(local)
        found: dict[str, tuple[int, list[int]]] = {}
        for folder_id, files in by_folder.items():
            # Names compare in one Unicode form: a Mac writes é as e + accent, a web
            # form sends it as one character; both are the same name to a person.
            names: dict[str, list[int]] = {}
            for asset in self.client.list_folder_assets(folder_id):
                names.setdefault(_nfc(asset.name), []).append(asset.asset_id)
            for local in files:
                ids = names.get(_nfc(PurePosixPath(local.rel_path).name))
                if ids:
                    found[local.rel_path] = (folder_id, ids)
        return found

    def _match(
        self, local: LocalFile, folder_id: int, assets: Sequence[AssetItem]
    ) -> Adopted | None:
        """The asset whose MD5 is the file's, if the file held still while hashed."""
        try:
            with open(self.root / local.rel_path, "rb") as stream:
                checksum, size = md5_of_file(stream)
                st = os.fstat(stream.fileno())
        except OSError:
            return None  # the upload step reports what is wrong with the file
        self.count_read(size)
        if not local.held_still(st):
            return None
        match = next((a for a in assets if a.checksum == checksum), None)
        if match is None:
            return None
        log.info("%s: already in Compass as asset %d", local.rel_path, match.asset_id)
        entry = EntryRecord(
            rel_path=local.rel_path,
            kind="file",
            folder_id=folder_id,
            asset_id=match.asset_id,
            remote_name=match.name,
            size=local.size,
            mtime_ns=local.mtime_ns,
            inode=local.inode,
            checksum=checksum,
            remote_updated_at=match.updated_at,
            origin="local",
        )
        return Adopted(local, entry)


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)

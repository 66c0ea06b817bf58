"""The synced tree: mappings and their entries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from syncagent.ledger.base import (
    LedgerBase,
    LedgerError,
    aware,
    reason_of,
    safe_url,
    utcnow,
)
from syncagent.ledger.models import (
    Entry,
    Failure,
    Mapping,
    Placement,
    ProxyFile,
    Upload,
    WithheldAsset,
)
from syncagent.ledger.records import EntryRecord
from syncagent.ledger.statements import ENTRY_COLUMNS


def entry_record(row: Entry | Placement) -> EntryRecord:
    """The record of an entry's row, or of the entry a placement note holds."""
    return EntryRecord(
        rel_path=row.rel_path,
        kind=row.kind if isinstance(row, Entry) else "file",
        folder_id=row.folder_id,
        asset_id=row.asset_id,
        remote_name=row.remote_name,
        size=row.size,
        mtime_ns=row.mtime_ns,
        inode=row.inode,
        checksum=row.checksum,
        remote_updated_at=aware(row.remote_updated_at),
        origin=row.origin,
    )


class EntriesMixin(LedgerBase):
    """Mappings, and the files and folders both sides agreed on."""

    # -- mappings -------------------------------------------------------------

    def ensure_mapping(self, local_root: str, folder_id: int) -> int:
        """The ID of the mapping of `local_root` to `folder_id`, made on first use."""
        query = select(Mapping.mapping_id).where(
            Mapping.local_root == local_root, Mapping.folder_id == folder_id
        )
        with self._write() as session:
            found = session.scalar(query)
            if found is not None:
                return found
            row = Mapping(
                local_root=local_root, folder_id=folder_id, created_at=utcnow()
            )
            session.add(row)
            session.flush()
            return row.mapping_id

    def find_mapping(self, local_root: str, folder_id: int) -> int | None:
        """The ID of a mapping if it was ever used, else None."""
        query = select(Mapping.mapping_id).where(
            Mapping.local_root == local_root, Mapping.folder_id == folder_id
        )
        with self._read() as session:
            return session.scalar(query)

    # -- entries --------------------------------------------------------------

    def entry(self, mapping_id: int, rel_path: str) -> EntryRecord | None:
        """The entry of one path, if the ledger has it."""
        return self._entries_where(
            Entry.mapping_id == mapping_id, Entry.rel_path == rel_path
        ).get(rel_path)

    def entries(self, mapping_id: int) -> dict[str, EntryRecord]:
        """Every entry of a mapping by relative path."""
        return self._entries_where(Entry.mapping_id == mapping_id)

    def _entries_where(self, *conditions: Any) -> dict[str, EntryRecord]:
        # Plain rows, not ORM objects: a pass reads every entry of a large tree.
        query = select(*ENTRY_COLUMNS).where(*conditions)
        try:
            with self._read_connection() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot read the ledger at {safe_url(self.url)}: {reason_of(exc)}"
            ) from exc
        found = {}
        for (
            rel_path,
            kind,
            folder_id,
            asset_id,
            remote_name,
            size,
            mtime_ns,
            inode,
            checksum,
            remote_updated_at,
            origin,
        ) in rows:
            found[rel_path] = EntryRecord(
                rel_path,
                kind,
                folder_id,
                asset_id,
                remote_name,
                size,
                mtime_ns,
                inode,
                checksum,
                aware(remote_updated_at),
                origin,
            )
        return found

    def claimed_asset_ids(self, *mapping_ids: int) -> set[int]:
        """Asset IDs the ledger knows for these mappings, synced or in flight."""
        with self._read() as session:
            synced = session.scalars(
                select(Entry.asset_id).where(
                    Entry.mapping_id.in_(mapping_ids), Entry.asset_id.is_not(None)
                )
            )
            flying = session.scalars(
                select(Upload.asset_id).where(
                    Upload.mapping_id.in_(mapping_ids), Upload.asset_id.is_not(None)
                )
            )
            return {a for a in synced if a is not None} | {
                a for a in flying if a is not None
            }

    def mappings(self) -> dict[int, str]:
        """Every mapping the ledger has seen: its ID and local root."""
        with self._read() as session:
            rows = session.execute(select(Mapping.mapping_id, Mapping.local_root))
            return {mapping_id: root for mapping_id, root in rows}

    def put_entry(self, mapping_id: int, entry: EntryRecord) -> None:
        """Record an entry as synced, replacing what was there for its path."""
        with self._write() as session:
            self._upsert_entry(session, mapping_id, entry)
            self._clear_failure(session, mapping_id, entry.rel_path)

    def add_entries(self, mapping_id: int, entries: Iterable[EntryRecord]) -> None:
        """Record many new entries in one transaction (none may exist yet)."""
        now = utcnow()
        rows = [
            {
                "mapping_id": mapping_id,
                "rel_path": e.rel_path,
                "kind": e.kind,
                "folder_id": e.folder_id,
                "asset_id": e.asset_id,
                "remote_name": e.remote_name,
                "size": e.size,
                "mtime_ns": e.mtime_ns,
                "inode": e.inode,
                "checksum": e.checksum,
                "remote_updated_at": e.remote_updated_at,
                "origin": e.origin,
                "synced_at": now,
            }
            for e in entries
        ]
        if not rows:
            return
        with self._write() as session:
            session.execute(insert(Entry), rows)

    def forget_mapping(self, mapping_id: int) -> int:
        """Forget what a mapping synced (entries, withheld deletes, proxies, and
        failures), so its next pass takes the folder as new; return the files
        forgotten. Uploads in flight stay, to be resumed."""
        with self._write() as session:
            files = session.scalar(
                select(func.count())
                .select_from(Entry)
                .where(Entry.mapping_id == mapping_id, Entry.kind == "file")
            )
            for table in (Entry, WithheldAsset, ProxyFile, Failure):
                session.execute(delete(table).where(table.mapping_id == mapping_id))
        return int(files or 0)

    def remove_entries(self, mapping_id: int, rel_paths: Iterable[str]) -> None:
        """Forget entries (their files are gone on the side that matters)."""
        paths = list(rel_paths)
        with self._write() as session:
            for start in range(0, len(paths), 500):
                chunk = paths[start : start + 500]
                session.execute(
                    delete(Entry).where(
                        Entry.mapping_id == mapping_id, Entry.rel_path.in_(chunk)
                    )
                )

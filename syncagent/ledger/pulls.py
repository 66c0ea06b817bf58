"""What pulls keep beyond entries: renames and moves, withheld deletes, proxies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from syncagent.ledger.base import utcnow
from syncagent.ledger.entries import EntriesMixin, entry_record
from syncagent.ledger.models import Entry, Placement, ProxyFile, WithheldAsset
from syncagent.ledger.records import EntryRecord, ProxyFileRecord


class PullStateMixin(EntriesMixin):
    """Entry renames and folder moves, assets withheld after a local delete, and the
    proxies placed in mirrors."""

    # -- pulls ----------------------------------------------------------------

    def intend_placement(
        self, mapping_id: int, entry: EntryRecord, replaces: str | None = None
    ) -> None:
        """Note a download about to be renamed into place as `entry` (moving the
        asset's entry from `replaces`, when given); record_placement ends it."""
        assert entry.asset_id is not None
        assert entry.size is not None and entry.mtime_ns is not None
        assert entry.inode is not None
        with self._write() as session:
            session.execute(_placement_at(mapping_id, entry.rel_path))
            session.add(
                Placement(
                    mapping_id=mapping_id,
                    rel_path=entry.rel_path,
                    replaces=replaces,
                    folder_id=entry.folder_id,
                    asset_id=entry.asset_id,
                    remote_name=entry.remote_name,
                    size=entry.size,
                    mtime_ns=entry.mtime_ns,
                    inode=entry.inode,
                    checksum=entry.checksum,
                    remote_updated_at=entry.remote_updated_at,
                    origin=entry.origin,
                )
            )

    def record_placement(
        self, mapping_id: int, entry: EntryRecord, replaces: str | None = None
    ) -> None:
        """A download is in place: record its entry (moved from `replaces`, when
        given) and end its placement note, in one transaction."""
        with self._write() as session:
            self._move_entry(session, mapping_id, replaces or entry.rel_path, entry)
            session.execute(_placement_at(mapping_id, entry.rel_path))

    def drop_placement(self, mapping_id: int, rel_path: str) -> None:
        """Forget a placement note: the download did not get there."""
        with self._write() as session:
            session.execute(_placement_at(mapping_id, rel_path))

    def placements(self, mapping_id: int) -> list[tuple[EntryRecord, str | None]]:
        """The placement notes a stopped run left: each entry it was placing, and
        the path that entry replaces, if any."""
        query = select(Placement).where(Placement.mapping_id == mapping_id)
        with self._read() as session:
            return [(entry_record(row), row.replaces) for row in session.scalars(query)]

    def rename_entry(
        self, mapping_id: int, old_rel_path: str, entry: EntryRecord
    ) -> None:
        """Record that an entry now lives at `entry.rel_path`, in one transaction."""
        with self._write() as session:
            self._move_entry(session, mapping_id, old_rel_path, entry)

    def _move_entry(
        self, session: Session, mapping_id: int, old_rel_path: str, entry: EntryRecord
    ) -> None:
        """Record `entry` in place of the entry at `old_rel_path` (the same path or
        another), clearing the failures of both."""
        if old_rel_path != entry.rel_path:
            session.execute(
                delete(Entry).where(
                    Entry.mapping_id == mapping_id, Entry.rel_path == old_rel_path
                )
            )
            self._clear_failure(session, mapping_id, old_rel_path)
        self._upsert_entry(session, mapping_id, entry)
        self._clear_failure(session, mapping_id, entry.rel_path)

    def move_entries(self, mapping_id: int, old_dir: str, new_dir: str) -> None:
        """A directory moved: rewrite its entry and every entry below it."""
        below = Entry.rel_path.startswith(old_dir + "/", autoescape=True)
        query = select(Entry).where(
            Entry.mapping_id == mapping_id, (Entry.rel_path == old_dir) | below
        )
        with self._write() as session:
            # LIKE ignores case on some databases: check the prefix exactly too.
            moving = [
                (row, row.rel_path)
                for row in session.scalars(query)
                if row.rel_path == old_dir or row.rel_path.startswith(old_dir + "/")
            ]
            # Two steps, so no row ever takes a path another row still holds.
            for row, _ in moving:
                row.rel_path = f"{_MOVING_PREFIX}{row.entry_id}"
            session.flush()
            for row, old in moving:
                row.rel_path = new_dir + old[len(old_dir) :]

    def withhold(
        self, mapping_id: int, entry: EntryRecord, *, folder_only: bool = False
    ) -> None:
        """Forget an entry deleted here and keep Compass from bringing it back.

        With `folder_only` the entry is a directory and its folder is withheld.
        """
        asset_id = 0 if folder_only else entry.asset_id
        if entry.folder_id is None or asset_id is None:
            self.remove_entries(mapping_id, [entry.rel_path])
            return
        with self._write() as session:
            session.execute(
                delete(Entry).where(
                    Entry.mapping_id == mapping_id, Entry.rel_path == entry.rel_path
                )
            )
            row = session.scalar(
                select(WithheldAsset).where(
                    WithheldAsset.mapping_id == mapping_id,
                    WithheldAsset.folder_id == entry.folder_id,
                    WithheldAsset.asset_id == asset_id,
                )
            )
            if row is None:
                row = WithheldAsset(
                    mapping_id=mapping_id, folder_id=entry.folder_id, asset_id=asset_id
                )
                session.add(row)
            row.checksum = None if folder_only else entry.checksum
            row.rel_path = entry.rel_path
            row.withheld_at = utcnow()

    def withheld(self, mapping_id: int) -> dict[tuple[int, int], str | None]:
        """What a pull leaves out: (folder, asset or 0) to the checksum then."""
        query = select(WithheldAsset).where(WithheldAsset.mapping_id == mapping_id)
        with self._read() as session:
            return {
                (row.folder_id, row.asset_id): row.checksum
                for row in session.scalars(query)
            }

    def release_withheld(
        self, mapping_id: int, keys: Iterable[tuple[int, int]]
    ) -> None:
        """Let pulls bring these assets (or folders) down again."""
        with self._write() as session:
            for folder_id, asset_id in keys:
                session.execute(
                    delete(WithheldAsset).where(
                        WithheldAsset.mapping_id == mapping_id,
                        WithheldAsset.folder_id == folder_id,
                        WithheldAsset.asset_id == asset_id,
                    )
                )

    def proxy_files(self, mapping_id: int) -> list[ProxyFileRecord]:
        """Every proxy placed in a mapping's mirror."""
        query = select(ProxyFile).where(ProxyFile.mapping_id == mapping_id)
        with self._read() as session:
            return [
                ProxyFileRecord(
                    folder_id=row.folder_id,
                    asset_id=row.asset_id,
                    proxy_type=row.proxy_type,
                    rel_path=row.rel_path,
                    source_checksum=row.source_checksum,
                    size=row.size,
                )
                for row in session.scalars(query)
            ]

    def put_proxy_file(self, mapping_id: int, record: ProxyFileRecord) -> None:
        """Record a proxy placed (or moved) in the mirror."""
        with self._write() as session:
            row = session.scalar(self._proxy_query(mapping_id, record))
            if row is None:
                row = ProxyFile(
                    mapping_id=mapping_id,
                    folder_id=record.folder_id,
                    asset_id=record.asset_id,
                    proxy_type=record.proxy_type,
                )
                session.add(row)
            row.rel_path = record.rel_path
            row.source_checksum = record.source_checksum
            row.size = record.size
            row.fetched_at = utcnow()

    def remove_proxy_file(self, mapping_id: int, record: ProxyFileRecord) -> None:
        """Forget a proxy that was removed from the mirror."""
        with self._write() as session:
            for row in session.scalars(self._proxy_query(mapping_id, record)):
                session.delete(row)

    @staticmethod
    def _proxy_query(mapping_id: int, record: ProxyFileRecord) -> Any:
        return select(ProxyFile).where(
            ProxyFile.mapping_id == mapping_id,
            ProxyFile.folder_id == record.folder_id,
            ProxyFile.asset_id == record.asset_id,
            ProxyFile.proxy_type == record.proxy_type,
        )


_MOVING_PREFIX = "/moving/"
"""Where a moving entry waits, so two rows never hold one path in between. No
relative path starts with "/"; a NUL byte would say the same on SQLite, but
PostgreSQL refuses it in text."""


def _placement_at(mapping_id: int, rel_path: str) -> Any:
    return delete(Placement).where(
        Placement.mapping_id == mapping_id, Placement.rel_path == rel_path
    )

"""Uploads in flight, checkpointed step by step, and their confirmed parts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from syncagent.ledger.base import LedgerBase, aware, utcnow
from syncagent.ledger.group_commit import Then
from syncagent.ledger.models import Entry, RevisionRecord, Upload, UploadPart
from syncagent.ledger.records import EntryRecord, UploadRecord, UploadStart
from syncagent.ledger.statements import (
    DELETE_FAILURE,
    DELETE_UPLOAD,
    INSERT_UPLOAD,
    SET_ASSET,
    SET_COMPLETING,
)


class UploadsMixin(LedgerBase):
    """Uploads in flight: begun, created, initiated, parts confirmed, completing."""

    # -- uploads in flight ----------------------------------------------------

    def begin_upload(
        self,
        mapping_id: int,
        *,
        rel_path: str,
        kind: str,
        folder_id: int,
        remote_name: str,
        asset_id: int | None,
        file_size: int,
        mtime_ns: int,
        inode: int,
        owner: str,
        lease: timedelta,
    ) -> UploadRecord:
        """Record that an upload starts, before anything is asked of Compass."""
        start = UploadStart(
            rel_path=rel_path,
            kind=kind,
            folder_id=folder_id,
            remote_name=remote_name,
            asset_id=asset_id,
            file_size=file_size,
            mtime_ns=mtime_ns,
            inode=inode,
        )
        return self.begin_uploads(mapping_id, [start], owner, lease)[0]

    def begin_uploads(
        self,
        mapping_id: int,
        starts: Sequence[UploadStart],
        owner: str,
        lease: timedelta,
    ) -> list[UploadRecord]:
        """Record that several uploads start, in one transaction."""
        now = utcnow()
        records = []
        with self._core() as connection:
            for start in starts:
                values = {
                    "mapping_id": mapping_id,
                    "rel_path": start.rel_path,
                    "kind": start.kind,
                    "folder_id": start.folder_id,
                    "remote_name": start.remote_name,
                    "asset_id": start.asset_id,
                    "file_size": start.file_size,
                    "mtime_ns": start.mtime_ns,
                    "inode": start.inode,
                    "state": "creating",
                    "owner": owner,
                    "lease_expires_at": now + lease,
                    "started_at": now,
                    "attempts": 1,
                }
                result = connection.execute(INSERT_UPLOAD, values)
                [upload_id] = result.inserted_primary_key or [None]
                records.append(
                    UploadRecord(
                        upload_id=int(upload_id),
                        mapping_id=mapping_id,
                        rel_path=start.rel_path,
                        kind=start.kind,
                        folder_id=start.folder_id,
                        remote_name=start.remote_name,
                        asset_id=start.asset_id,
                        file_size=start.file_size,
                        mtime_ns=start.mtime_ns,
                        inode=start.inode,
                        part_size=None,
                        part_count=None,
                        state="creating",
                        checksum=None,
                        owner=owner,
                        lease_expires_at=now + lease,
                        confirmed_parts={},
                        started_at=now,
                    )
                )
        return records

    def uploads(self, mapping_id: int) -> list[UploadRecord]:
        """Every upload in flight on a mapping."""
        query = select(Upload).where(Upload.mapping_id == mapping_id)
        with self._read() as session:
            return [self._upload_record(session, row) for row in session.scalars(query)]

    def claim_upload(
        self, upload_id: int, owner: str, lease: timedelta, *, force: bool = False
    ) -> UploadRecord | None:
        """Take over an upload whose lease ran out (any, with force); None if held."""
        now = utcnow()
        with self._write() as session:
            row = session.get(Upload, upload_id)
            if row is None:
                return None
            expired = (aware(row.lease_expires_at) or now) <= now
            if row.owner != owner and not (expired or force):
                return None
            if row.owner != owner:
                row.attempts += 1
            row.owner = owner
            row.lease_expires_at = now + lease
            return self._upload_record(session, row)

    def renew_leases(self, owner: str, lease: timedelta) -> None:
        """Extend the lease of every upload this owner holds."""
        with self._write() as session:
            session.execute(
                update(Upload)
                .where(Upload.owner == owner)
                .values(lease_expires_at=utcnow() + lease)
            )

    def set_upload_asset(self, upload_id: int, asset_id: int) -> None:
        """The asset exists in Compass: remember its ID before anything else."""
        self._update_upload(upload_id, asset_id=asset_id, state="created")

    def set_upload_assets(self, assets: dict[int, int]) -> None:
        """Remember the asset IDs of several uploads in one transaction."""
        if not assets:
            return
        rows = [{"b_upload_id": u, "b_asset_id": a} for u, a in assets.items()]
        with self._core() as connection:
            connection.execute(SET_ASSET, rows)

    def set_upload_initiated(
        self, upload_id: int, part_size: int, part_count: int
    ) -> None:
        """Initiate answered: parts are numbered from here on; old parts are void."""
        with self._core() as connection:
            connection.execute(
                delete(UploadPart).where(UploadPart.upload_id == upload_id)
            )
            connection.execute(
                update(Upload)
                .where(Upload.upload_id == upload_id)
                .values(part_size=part_size, part_count=part_count, state="initiated")
            )

    def confirm_parts(
        self, upload_id: int, parts: Iterable[tuple[int, str, int]]
    ) -> None:
        """Compass confirmed these parts (number, MD5, size); repeating is harmless."""
        with self._core() as connection:
            for number, checksum, size in parts:
                connection.execute(
                    delete(UploadPart).where(
                        UploadPart.upload_id == upload_id,
                        UploadPart.part_number == number,
                    )
                )
                connection.execute(
                    insert(UploadPart).values(
                        upload_id=upload_id,
                        part_number=number,
                        checksum=checksum,
                        size=size,
                    )
                )

    def set_upload_completing(self, upload_id: int, checksum: str) -> None:
        """About to ask Compass to complete; `checksum` is the whole-file MD5."""
        params = {"b_upload_id": upload_id, "b_checksum": checksum}
        self._grouped(lambda connection: connection.execute(SET_COMPLETING, params))

    def reset_upload(
        self, upload_id: int, *, state: str, forget_asset: bool = False
    ) -> None:
        """Start an upload over from `state`, dropping its parts (and its asset ID)."""
        with self._write() as session:
            session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
            values: dict[str, Any] = {
                "part_size": None,
                "part_count": None,
                "checksum": None,
                "state": state,
            }
            if forget_asset:
                values["asset_id"] = None
            session.execute(
                update(Upload).where(Upload.upload_id == upload_id).values(**values)
            )

    def make_upload_new(self, upload_id: int) -> None:
        """Turn a revision whose asset is gone into the upload of a new asset."""
        self.reset_upload(upload_id, state="creating", forget_asset=True)
        self._update_upload(upload_id, kind="new")

    def restat_upload(
        self, upload_id: int, *, file_size: int, mtime_ns: int, inode: int
    ) -> None:
        """The file changed before any byte went up: take its new size and times."""
        self._update_upload(
            upload_id, file_size=file_size, mtime_ns=mtime_ns, inode=inode
        )

    def drop_upload(self, upload_id: int) -> None:
        """Forget an upload in flight (the file vanished or the upload was undone)."""
        with self._write() as session:
            session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
            session.execute(delete(Upload).where(Upload.upload_id == upload_id))

    def finish_upload(self, upload: UploadRecord, entry: EntryRecord) -> None:
        """The upload is verified in Compass: record the entry synced, atomically."""
        self._grouped(partial(self._finish_upload, upload, entry))

    def finish_upload_later(
        self, upload: UploadRecord, entry: EntryRecord, then: Then
    ) -> None:
        """finish_upload() without waiting: committed with others soon, after which
        `then` is called (on the ledger's thread) with the error or None.
        `flush_deferred` waits for it."""
        self._deferred_write(partial(self._finish_upload, upload, entry), then)

    def _finish_upload(
        self, upload: UploadRecord, entry: EntryRecord, connection: Connection
    ) -> None:
        self._upsert_entry(connection, upload.mapping_id, entry)
        if upload.kind == "revision":
            connection.execute(
                insert(RevisionRecord).values(
                    mapping_id=upload.mapping_id,
                    rel_path=entry.rel_path,
                    asset_id=entry.asset_id,
                    checksum=entry.checksum,
                    size=entry.size,
                    uploaded_at=utcnow(),
                )
            )
        # Its confirmed parts go with it (ON DELETE CASCADE).
        connection.execute(DELETE_UPLOAD, {"b_upload_id": upload.upload_id})
        connection.execute(
            DELETE_FAILURE,
            {"b_mapping_id": upload.mapping_id, "b_rel_path": entry.rel_path},
        )

    def count_entries(self, mapping_id: int, kind: str = "file") -> int:
        """How many entries of a kind ('file' or 'dir') a mapping has in sync."""
        query = (
            select(func.count())
            .select_from(Entry)
            .where(Entry.mapping_id == mapping_id, Entry.kind == kind)
        )
        with self._read() as session:
            return int(session.scalar(query) or 0)

    def _update_upload(self, upload_id: int, **values: Any) -> None:
        with self._core() as connection:
            connection.execute(
                update(Upload).where(Upload.upload_id == upload_id).values(**values)
            )

    @staticmethod
    def _upload_record(session: Session, row: Upload) -> UploadRecord:
        parts = session.execute(
            select(UploadPart.part_number, UploadPart.checksum).where(
                UploadPart.upload_id == row.upload_id
            )
        )
        return UploadRecord(
            upload_id=row.upload_id,
            mapping_id=row.mapping_id,
            rel_path=row.rel_path,
            kind=row.kind,
            folder_id=row.folder_id,
            remote_name=row.remote_name,
            asset_id=row.asset_id,
            file_size=row.file_size,
            mtime_ns=row.mtime_ns,
            inode=row.inode,
            part_size=row.part_size,
            part_count=row.part_count,
            state=row.state,
            checksum=row.checksum,
            owner=row.owner,
            lease_expires_at=aware(row.lease_expires_at) or utcnow(),
            confirmed_parts={int(n): str(c) for n, c in parts},
            started_at=aware(row.started_at),
        )

    def upload(self, upload_id: int) -> UploadRecord | None:
        """One upload in flight, with its confirmed parts."""
        with self._read() as session:
            row = session.get(Upload, upload_id)
            return None if row is None else self._upload_record(session, row)

"""The ledger: the one owner of sync state, behind plain-record methods.

Writes are serialised by a lock, so worker threads may call in freely; each method is
one transaction. Reads may run beside an agent in another process (SQLite WAL).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from syncagent.ledger import migrate
from syncagent.ledger.models import (
    AgentRecord,
    Entry,
    Failure,
    Mapping,
    PassRecord,
    ProxyFile,
    RevisionRecord,
    Upload,
    UploadPart,
    WithheldAsset,
)
from syncagent.ledger.records import (
    AgentInfo,
    EntryRecord,
    FailureRecord,
    PassSummary,
    ProxyFileRecord,
    UploadRecord,
    UploadStart,
)

log = logging.getLogger(__name__)


class LedgerError(Exception):
    """The ledger cannot be opened or written; the message says which and why."""


class MappingBusy(LedgerError):
    """Another live process is running a pass over the same mapping."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 runs DDL outside any transaction; with its own transaction
    # handling off and BEGIN emitted below, a schema migration that fails half-way
    # (a full disk, a crash) leaves nothing behind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_ledger_engine(url: str) -> Engine:
    """An engine for the ledger URL; a SQLite file gets WAL and its folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


_ENTRY_COLUMNS = (
    Entry.rel_path,
    Entry.kind,
    Entry.folder_id,
    Entry.asset_id,
    Entry.remote_name,
    Entry.size,
    Entry.mtime_ns,
    Entry.inode,
    Entry.checksum,
    Entry.remote_updated_at,
    Entry.origin,
)


# Statements built once: an upload writes the ledger a few times, and building a
# statement costs more than running it.
_ENTRY_VALUES = (
    "kind",
    "folder_id",
    "asset_id",
    "remote_name",
    "size",
    "mtime_ns",
    "inode",
    "checksum",
    "remote_updated_at",
    "origin",
    "synced_at",
)
_UPDATE_ENTRY = (
    update(Entry)
    .where(
        Entry.mapping_id == bindparam("b_mapping_id"),
        Entry.rel_path == bindparam("b_rel_path"),
    )
    .values({name: bindparam(f"b_{name}") for name in _ENTRY_VALUES})
)
_INSERT_ENTRY = insert(Entry)
_INSERT_UPLOAD = insert(Upload)
_SET_ASSET = (
    update(Upload)
    .where(Upload.upload_id == bindparam("b_upload_id"))
    .values(asset_id=bindparam("b_asset_id"), state="created")
)
_SET_COMPLETING = (
    update(Upload)
    .where(Upload.upload_id == bindparam("b_upload_id"))
    .values(state="completing", checksum=bindparam("b_checksum"))
)
_DELETE_PARTS = delete(UploadPart).where(
    UploadPart.upload_id == bindparam("b_upload_id")
)
_DELETE_UPLOAD = delete(Upload).where(Upload.upload_id == bindparam("b_upload_id"))
_DELETE_FAILURE = delete(Failure).where(
    Failure.mapping_id == bindparam("b_mapping_id"),
    Failure.rel_path == bindparam("b_rel_path"),
)


def _entry_record(row: Entry) -> EntryRecord:
    return EntryRecord(
        rel_path=row.rel_path,
        kind=row.kind,
        folder_id=row.folder_id,
        asset_id=row.asset_id,
        remote_name=row.remote_name,
        size=row.size,
        mtime_ns=row.mtime_ns,
        inode=row.inode,
        checksum=row.checksum,
        remote_updated_at=_aware(row.remote_updated_at),
        origin=row.origin,
    )


class Ledger:
    """Sync state in a SQLAlchemy database; migrated to the newest schema on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = create_ledger_engine(url)
            migrate.upgrade(self.engine)
        except ImportError as exc:
            raise LedgerError(
                f"cannot open the ledger at {_safe_url(url)}: the database driver "
                f"for it is not installed ({exc})"
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise LedgerError(
                f"cannot open the ledger at {_safe_url(url)}: {_reason(exc)}"
            ) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.RLock()

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self._write_lock, self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot write the ledger at {_safe_url(self.url)}: {_reason(exc)}"
            ) from exc

    @contextmanager
    def _core(self) -> Iterator[Connection]:
        """A write transaction on a plain connection: the hot paths of an upload
        need no ORM objects, and each costs a fraction of an ORM session."""
        try:
            with self._write_lock, self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot write the ledger at {_safe_url(self.url)}: {_reason(exc)}"
            ) from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self._sessions() as session:
                yield session
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot read the ledger at {_safe_url(self.url)}: {_reason(exc)}"
            ) from exc

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

    def entries(self, mapping_id: int) -> dict[str, EntryRecord]:
        """Every entry of a mapping by relative path."""
        # Plain rows, not ORM objects: a pass reads every entry of a large tree.
        query = select(*_ENTRY_COLUMNS).where(Entry.mapping_id == mapping_id)
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot read the ledger at {_safe_url(self.url)}: {_reason(exc)}"
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
                _aware(remote_updated_at),
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

    @staticmethod
    def _upsert_entry(
        target: Session | Connection, mapping_id: int, entry: EntryRecord
    ) -> None:
        values = {
            "kind": entry.kind,
            "folder_id": entry.folder_id,
            "asset_id": entry.asset_id,
            "remote_name": entry.remote_name,
            "size": entry.size,
            "mtime_ns": entry.mtime_ns,
            "inode": entry.inode,
            "checksum": entry.checksum,
            "remote_updated_at": entry.remote_updated_at,
            "origin": entry.origin,
            "synced_at": utcnow(),
        }
        key = {"b_mapping_id": mapping_id, "b_rel_path": entry.rel_path}
        changed = target.execute(
            _UPDATE_ENTRY, {**key, **{f"b_{k}": v for k, v in values.items()}}
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            target.execute(
                _INSERT_ENTRY,
                {"mapping_id": mapping_id, "rel_path": entry.rel_path, **values},
            )

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
        now = utcnow()
        with self._write() as session:
            row = Upload(
                mapping_id=mapping_id,
                rel_path=rel_path,
                kind=kind,
                folder_id=folder_id,
                remote_name=remote_name,
                asset_id=asset_id,
                file_size=file_size,
                mtime_ns=mtime_ns,
                inode=inode,
                state="creating",
                owner=owner,
                lease_expires_at=now + lease,
                started_at=now,
                attempts=1,
            )
            session.add(row)
            session.flush()
            return self._upload_record(session, row)

    def begin_uploads(
        self,
        mapping_id: int,
        starts: Sequence[UploadStart],
        owner: str,
        lease: timedelta,
    ) -> list[UploadRecord]:
        """Record that several new uploads start, in one transaction."""
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
                result = connection.execute(_INSERT_UPLOAD, values)
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
            expired = (_aware(row.lease_expires_at) or now) <= now
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
            connection.execute(_SET_ASSET, rows)

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
        with self._core() as connection:
            connection.execute(
                _SET_COMPLETING, {"b_upload_id": upload_id, "b_checksum": checksum}
            )

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
        with self._core() as connection:
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
            connection.execute(_DELETE_PARTS, {"b_upload_id": upload.upload_id})
            connection.execute(_DELETE_UPLOAD, {"b_upload_id": upload.upload_id})
            connection.execute(
                _DELETE_FAILURE,
                {"b_mapping_id": upload.mapping_id, "b_rel_path": entry.rel_path},
            )

    def revision_count(self, mapping_id: int) -> int:
        """How many revisions this agent uploaded on a mapping."""
        query = select(RevisionRecord.revision_row_id).where(
            RevisionRecord.mapping_id == mapping_id
        )
        with self._read() as session:
            return len(session.scalars(query).all())

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
            lease_expires_at=_aware(row.lease_expires_at) or utcnow(),
            confirmed_parts={int(n): str(c) for n, c in parts},
        )

    def upload(self, upload_id: int) -> UploadRecord | None:
        """One upload in flight, with its confirmed parts."""
        with self._read() as session:
            row = session.get(Upload, upload_id)
            return None if row is None else self._upload_record(session, row)

    # -- failures -------------------------------------------------------------

    def record_failure(
        self,
        mapping_id: int,
        rel_path: str,
        operation: str,
        reason: str,
        *,
        permanent: bool,
    ) -> None:
        """Remember why an entry failed; repeated failures count up."""
        now = utcnow()
        with self._write() as session:
            row = session.scalar(
                select(Failure).where(
                    Failure.mapping_id == mapping_id, Failure.rel_path == rel_path
                )
            )
            if row is None:
                session.add(
                    Failure(
                        mapping_id=mapping_id,
                        rel_path=rel_path,
                        operation=operation,
                        reason=reason,
                        permanent=permanent,
                        first_seen=now,
                        last_seen=now,
                        count=1,
                    )
                )
                return
            row.operation = operation
            row.reason = reason
            row.permanent = permanent
            row.last_seen = now
            row.count += 1

    def clear_failures(self, mapping_id: int, rel_paths: Iterable[str]) -> None:
        """Forget the failures of entries that no longer fail."""
        with self._write() as session:
            for rel_path in rel_paths:
                self._clear_failure(session, mapping_id, rel_path)

    @staticmethod
    def _clear_failure(session: Session, mapping_id: int, rel_path: str) -> None:
        session.execute(
            delete(Failure).where(
                Failure.mapping_id == mapping_id, Failure.rel_path == rel_path
            )
        )

    def failures(self, mapping_id: int) -> list[FailureRecord]:
        """Every current failure on a mapping, oldest first."""
        query = (
            select(Failure)
            .where(Failure.mapping_id == mapping_id)
            .order_by(Failure.first_seen)
        )
        with self._read() as session:
            return [
                FailureRecord(
                    rel_path=row.rel_path,
                    operation=row.operation,
                    reason=row.reason,
                    permanent=row.permanent,
                    first_seen=_aware(row.first_seen) or utcnow(),
                    last_seen=_aware(row.last_seen) or utcnow(),
                    count=row.count,
                )
                for row in session.scalars(query)
            ]

    # -- passes ---------------------------------------------------------------

    def start_pass(
        self, mapping_id: int, kind: str, owner: str, is_alive: Callable[[str], bool]
    ) -> int:
        """Record that a pass begins and return its ID.

        Raises MappingBusy while another live process has a pass open on the mapping;
        passes left open by dead processes are closed as 'interrupted'.
        """
        with self._write() as session:
            open_passes = session.scalars(
                select(PassRecord).where(
                    PassRecord.mapping_id == mapping_id,
                    PassRecord.finished_at.is_(None),
                )
            )
            for running in open_passes:
                if running.owner == owner:
                    continue
                if is_alive(running.owner):
                    raise MappingBusy(
                        f"another syncagent process ({running.owner}) is running a "
                        f"{running.kind} pass on this mapping"
                    )
                running.finished_at = utcnow()
                running.outcome = "interrupted"
            row = PassRecord(
                mapping_id=mapping_id, kind=kind, owner=owner, started_at=utcnow()
            )
            session.add(row)
            session.flush()
            return row.pass_id

    def finish_pass(self, pass_id: int, outcome: str, summary: dict[str, Any]) -> None:
        """Record how a pass ended."""
        with self._write() as session:
            session.execute(
                update(PassRecord)
                .where(PassRecord.pass_id == pass_id)
                .values(
                    finished_at=utcnow(),
                    outcome=outcome,
                    summary=json.dumps(summary, sort_keys=True),
                )
            )

    def last_pass(self, mapping_id: int, kind: str) -> PassSummary | None:
        """The most recent pass of a kind on a mapping."""
        query = (
            select(PassRecord)
            .where(PassRecord.mapping_id == mapping_id, PassRecord.kind == kind)
            .order_by(PassRecord.pass_id.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.scalar(query)
            if row is None:
                return None
            return PassSummary(
                kind=row.kind,
                started_at=_aware(row.started_at) or utcnow(),
                finished_at=_aware(row.finished_at),
                outcome=row.outcome,
                summary=row.summary,
            )

    # -- agents ---------------------------------------------------------------

    def register_agent(self, owner: str, kind: str, hostname: str, pid: int) -> None:
        """Announce a process working on this ledger."""
        now = utcnow()
        with self._write() as session:
            session.merge(
                AgentRecord(
                    owner=owner,
                    kind=kind,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def heartbeat(self, owner: str) -> None:
        """Say a registered process is still alive."""
        with self._write() as session:
            session.execute(
                update(AgentRecord)
                .where(AgentRecord.owner == owner)
                .values(heartbeat_at=utcnow())
            )

    def unregister_agent(self, owner: str) -> None:
        """A process is leaving cleanly."""
        with self._write() as session:
            session.execute(delete(AgentRecord).where(AgentRecord.owner == owner))

    def agents(self) -> list[AgentInfo]:
        """Every process registered on the ledger (some may have died)."""
        with self._read() as session:
            return [
                AgentInfo(
                    owner=row.owner,
                    kind=row.kind,
                    hostname=row.hostname,
                    pid=row.pid,
                    started_at=_aware(row.started_at) or utcnow(),
                    heartbeat_at=_aware(row.heartbeat_at) or utcnow(),
                )
                for row in session.scalars(select(AgentRecord))
            ]

    # -- pulls ----------------------------------------------------------------

    def rename_entry(
        self, mapping_id: int, old_rel_path: str, entry: EntryRecord
    ) -> None:
        """Record that an entry now lives at `entry.rel_path`, in one transaction."""
        with self._write() as session:
            session.execute(
                delete(Entry).where(
                    Entry.mapping_id == mapping_id, Entry.rel_path == old_rel_path
                )
            )
            self._upsert_entry(session, mapping_id, entry)
            self._clear_failure(session, mapping_id, old_rel_path)
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


# Where a moving entry waits, so two rows never hold one path in between.
_MOVING_PREFIX = "\x00moving/"


def _reason(exc: Exception) -> str:
    """The database's own words, without the SQL statement SQLAlchemy appends."""
    original = getattr(exc, "orig", None)
    return str(original) if original is not None else str(exc).split("\n")[0]


def _safe_url(url: str) -> str:
    """The ledger URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable ledger url>"

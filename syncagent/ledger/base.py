"""The ledger's foundation: its engine, its transactions and its errors.

Writes are serialised by a lock, so worker threads may call in freely; each method is
one transaction. Reads may run beside an agent in another process (SQLite WAL).
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from syncagent.ledger import migrate
from syncagent.ledger.group_commit import DeferredCommits, GroupCommit, Then
from syncagent.ledger.models import Failure
from syncagent.ledger.records import EntryRecord
from syncagent.ledger.statements import INSERT_ENTRY, UPDATE_ENTRY
from syncagent.migrations import HEAD


class LedgerError(Exception):
    """The ledger cannot be opened or written; the message says which and why."""


class LedgerUnavailable(LedgerError):
    """The ledger's storage fails for now (a full disk, an I/O error): unlike a
    wrong URL, waiting and trying again can cure it."""


class MappingBusy(LedgerError):
    """Another live process is running a pass over the same mapping."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
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


def create_ledger_engine(
    url: str, *, read_only: bool = False, immutable: bool = False
) -> Engine:
    """An engine for the ledger URL; a SQLite file gets WAL and its folder created.

    A read-only SQLite engine opens the file as such, so that a user who may only
    read the ledger (a monitoring account) can still look at it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    on_disk = bool(parsed.database) and parsed.database != ":memory:"
    if read_only and on_disk:
        flag = "immutable=1" if immutable else "mode=ro"
        url = f"sqlite:///file:{parsed.database}?{flag}&uri=true"
    elif on_disk:
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}
    )
    event.listen(engine, "connect", _read_pragmas if read_only else _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _read_only_engine(url: str) -> Engine:
    """An engine that only reads, at the newest schema.

    A SQLite ledger in WAL mode needs its -shm file, which SQLite may not create in a
    folder the reader cannot write; it is then read as an immutable snapshot, which
    may lag behind an agent writing at that moment.
    """
    engine = create_ledger_engine(url, read_only=True)
    try:
        _check_schema(engine)
        return engine
    except SQLAlchemyError:
        engine.dispose()
        if not url.startswith("sqlite:///"):
            raise
    engine = create_ledger_engine(url, read_only=True, immutable=True)
    _check_schema(engine)
    return engine


def _check_schema(engine: Engine) -> None:
    """A ledger opened read-only must already be at the newest schema."""
    current = migrate.current_revision(engine)
    if current != HEAD:
        raise LedgerError(
            f"the ledger's schema is at {current or 'nothing'}, this syncagent needs "
            f"{HEAD}: run `syncagent db upgrade` (or any other command) once with "
            "write access"
        )


def upgrade_ledger(url: str) -> tuple[str | None, str | None]:
    """Migrate the ledger at `url`; its schema revisions before and after."""
    try:
        engine = create_ledger_engine(url)
        try:
            before = migrate.current_revision(engine)
            migrate.upgrade(engine)
            return before, migrate.current_revision(engine)
        finally:
            engine.dispose()
    except ImportError as exc:
        raise LedgerError(
            f"cannot open the ledger at {safe_url(url)}: the database driver for it "
            f"is not installed ({exc})"
        ) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise LedgerError(
            f"cannot upgrade the ledger at {safe_url(url)}: {reason_of(exc)}"
        ) from exc


_SNAPSHOT = "REPEATABLE READ"
"""Isolation of a snapshot() on databases other than SQLite: one snapshot per
transaction, as of its first statement."""

WRITES = "syncagent_writes"
"""Execution option of the connections that write the ledger."""


def _sqlite_begin(connection: Any) -> None:
    # A write transaction takes the write lock at once, waiting (busy_timeout) for a
    # writer of another process to finish; begun as a read, its first write could
    # only fail at once ("database is locked"), as SQLite does not wait on a lock a
    # reader upgrades to.
    immediate = connection.get_execution_options().get(WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class LedgerBase:
    """Opens the database, migrates it, and runs transactions; the parts of the
    ledger (entries, uploads, activity, pull state) build on it."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """Open the ledger; a read-only ledger is never migrated nor written."""
        self.url = url
        new_file = _sqlite_file(url)
        if new_file is not None and new_file.exists():
            new_file = None
        try:
            if read_only:
                self.engine = _read_only_engine(url)
            else:
                self.engine = create_ledger_engine(url)
                migrate.upgrade(self.engine)
        except ImportError as exc:
            raise LedgerError(
                f"cannot open the ledger at {safe_url(url)}: the database driver "
                f"for it is not installed ({exc})"
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            if new_file is not None:
                # Left behind, an empty file would read as a ledger of no schema.
                _remove_sqlite_files(new_file)
            if _storage_failed(exc):
                raise LedgerUnavailable(
                    f"cannot open the ledger at {safe_url(url)}: its disk failed "
                    f"({reason_of(exc)}); free space or fix the disk, then start "
                    "again"
                ) from exc
            if _server_unreachable(exc):
                raise LedgerUnavailable(
                    f"cannot reach the ledger's database server at {safe_url(url)} "
                    f"({reason_of(exc)}); start again once it answers"
                ) from exc
            raise LedgerError(
                f"cannot open the ledger at {safe_url(url)}: {reason_of(exc)}"
            ) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = self.engine.execution_options(**{WRITES: True})
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._write_lock = threading.RLock()
        self._keeps_writer = self.engine.dialect.name == "sqlite"
        self._held_writer: Connection | None = None
        self._group = GroupCommit(self._core)
        self._deferred = DeferredCommits(self._core)
        self._snapshots = threading.local()

    def close(self) -> None:
        """Commit the writes still deferred, then release the database connections.

        An error a deferred write's follow-up raised was the pass's to report;
        `flush_deferred` is where a pass sees it.
        """
        with contextlib.suppress(Exception):
            self._deferred.flush()
        with self._write_lock:
            if self._held_writer is not None:
                self._held_writer.close()
                self._held_writer = None
        self.engine.dispose()

    def flush_deferred(self) -> None:
        """Wait until the deferred writes are committed and followed up; re-raise
        the first error a follow-up raised."""
        self._deferred.flush()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self._write_lock, self._write_sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot write the ledger at {safe_url(self.url)}: {reason_of(exc)}"
            ) from exc

    @contextmanager
    def _core(self) -> Iterator[Connection]:
        """A write transaction on a plain connection: the hot paths of an upload
        need no ORM objects, and each costs a fraction of an ORM session.

        On SQLite the connection is kept between transactions (they are serialised
        by the write lock anyway): taking one from the pool and giving it back cost
        as much as the checkpoint written with it. One that failed is not kept.
        """
        with self._write_lock:
            connection, self._held_writer = self._held_writer, None
            try:
                if connection is None:
                    connection = self._writer.connect()
                with connection.begin():
                    yield connection
            except BaseException as exc:
                if connection is not None:
                    connection.close()
                if isinstance(exc, SQLAlchemyError):
                    raise LedgerError(
                        f"cannot write the ledger at {safe_url(self.url)}: "
                        f"{reason_of(exc)}"
                    ) from exc
                raise
            if self._keeps_writer:
                self._held_writer = connection
            else:
                connection.close()

    def _grouped(self, write: Callable[[Connection], object]) -> None:
        """Run `write` in a write transaction that concurrent writes may share;
        return once it is committed (see group_commit.py)."""
        self._group.run(write)

    def _deferred_write(
        self, write: Callable[[Connection], object], then: Then
    ) -> None:
        """Commit `write` soon, in a batch, without waiting; `then` follows it."""
        self._deferred.submit(write, then)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Make every read of this thread inside the block see the ledger as it
        stood at the first of them, whatever is written meanwhile.

        A report that adds up several reads (synced, in flight, pending) needs it
        while a pass commits: a file whose record lands between two reads would
        otherwise be counted in neither or in both. Nested blocks share the outer
        snapshot.
        """
        if self._held_snapshot() is not None:
            yield
            return
        with self._read() as session:
            # The session's transaction lasts until the block ends. On SQLite (WAL)
            # it reads one snapshot throughout; elsewhere (PostgreSQL) a transaction
            # must ask for that.
            if self.engine.dialect.name != "sqlite":
                session.connection(execution_options={"isolation_level": _SNAPSHOT})
            self._snapshots.session = session
            try:
                yield
            finally:
                self._snapshots.session = None

    def _held_snapshot(self) -> Session | None:
        return getattr(self._snapshots, "session", None)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        held = self._held_snapshot()
        if held is not None:
            yield held
            return
        try:
            with self._sessions() as session:
                yield session
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"cannot read the ledger at {safe_url(self.url)}: {reason_of(exc)}"
            ) from exc

    @contextmanager
    def _read_connection(self) -> Iterator[Connection]:
        """A connection for plain-row reads, in the snapshot if one is held."""
        held = self._held_snapshot()
        if held is not None:
            yield held.connection()
            return
        with self.engine.connect() as connection:
            yield connection

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
            UPDATE_ENTRY, {**key, **{f"b_{k}": v for k, v in values.items()}}
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            target.execute(
                INSERT_ENTRY,
                {"mapping_id": mapping_id, "rel_path": entry.rel_path, **values},
            )

    @staticmethod
    def _clear_failure(session: Session, mapping_id: int, rel_path: str) -> None:
        session.execute(
            delete(Failure).where(
                Failure.mapping_id == mapping_id, Failure.rel_path == rel_path
            )
        )


_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


def _storage_failed(exc: Exception) -> bool:
    """Whether opening the ledger failed on its storage (full, I/O error)."""
    original = getattr(exc, "orig", exc)
    code = getattr(original, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_IOERR, _SQLITE_FULL)
    return isinstance(original, OSError) and original.errno in _STORAGE_ERRNOS


def _server_unreachable(exc: Exception) -> bool:
    """Whether opening the ledger failed to reach its database server (PostgreSQL
    down or far away), rather than on a wrong URL, database, user or password."""
    original = getattr(exc, "orig", None)
    if not isinstance(exc, OperationalError) or original is None:
        return False
    # A server that answered and refused (no such database, a wrong password)
    # says FATAL; a connection never made (refused, timed out, no such host) has
    # neither that nor an SQLSTATE.
    return getattr(original, "sqlstate", "") is None and "FATAL" not in str(original)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ledger URL; None for other databases or memory."""
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (
        None,
        "",
        ":memory:",
    ):
        return None
    return Path(str(parsed.database))


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            path.with_name(path.name + suffix).unlink()


def reason_of(exc: Exception) -> str:
    """The database's own words, without the SQL statement SQLAlchemy appends."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc).split("\n")[0]
    return " ".join(text.split())  # one line: a server's message may hold several


def safe_url(url: str) -> str:
    """The ledger URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable ledger url>"

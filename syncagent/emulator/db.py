"""The emulator's own state: SQLAlchemy models in SQLite (WAL) under the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, Row, String, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    sessionmaker,
)

PERMISSION_NAMES = (
    "admin",
    "asset_delete",
    "download",
    "folder_delete",
    "folder_manage",
    "share",
    "upload",
    "view",
    "watermark",
)

Record = Row[*tuple[Any, ...]]
"""A row of a Core query: columns by attribute, as the ORM objects have them."""


class Base(DeclarativeBase):
    """Declarative base of the emulator's tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class User(Base):
    """A Compass user who can authenticate."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    """pbkdf2-sha256 of the password, as 'salt_hex$digest_hex'."""


class Folder(Base):
    """A folder; names are unique within their parent."""

    __tablename__ = "folders"
    # IDs are never given out twice, as in Compass: a deleted record's ID stays dead.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id"), index=True)
    updated_at: Mapped[int]
    """Epoch milliseconds of the last change."""


class Permission(Base):
    """What one user may do in one folder; a missing row means nothing."""

    __tablename__ = "permissions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"), primary_key=True)
    admin: Mapped[bool] = mapped_column(default=False)
    asset_delete: Mapped[bool] = mapped_column(default=False)
    download: Mapped[bool] = mapped_column(default=False)
    folder_delete: Mapped[bool] = mapped_column(default=False)
    folder_manage: Mapped[bool] = mapped_column(default=False)
    share: Mapped[bool] = mapped_column(default=False)
    upload: Mapped[bool] = mapped_column(default=False)
    view: Mapped[bool] = mapped_column(default=False)
    watermark: Mapped[bool] = mapped_column(default=False)

    def flags(self) -> dict[str, bool]:
        """Return the permission flags by name."""
        return {name: bool(getattr(self, name)) for name in PERMISSION_NAMES}


class Asset(Base):
    """An asset item; its bytes are the stored object `object_key` once complete."""

    __tablename__ = "assets"
    # IDs are never given out twice, as in Compass: a deleted record's ID stays dead.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(1000), index=True)
    """Display name; bulk_update may change it (same extension)."""
    file_name: Mapped[str] = mapped_column(String(1000))
    """Name of the file last uploaded (the original or the newest revision)."""
    asset_class: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    """'created' until its first upload completes, then 'complete'."""
    size: Mapped[int | None]
    """Bytes of the current file; None until complete."""
    checksum: Mapped[str | None] = mapped_column(String(32))
    """MD5 hex of the current file; None until complete."""
    object_key: Mapped[str | None] = mapped_column(String(200))
    mcs_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[int]
    updated_at: Mapped[int] = mapped_column(index=True)
    uploaded_at: Mapped[int | None]
    uploaded_by: Mapped[str] = mapped_column(String(200))
    custom_fields: Mapped[list[Any]] = mapped_column(default=list)
    """Custom metadata fields: [{id, category, label, value}, ...]."""
    titles: Mapped[list[Any]] = mapped_column(default=list)
    """Titles as given at upload or bulk_update: [{gpms_id, alpha_id?}, ...]."""
    vocab: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Vocabulary-bound fields: asset_type, asset_subtype, usage_status, ..."""
    proxy_state: Mapped[str] = mapped_column(String(20), default="none")
    """'none' before completion, 'pending' while proxies are made, then 'done'."""


class AssetFolder(Base):
    """Membership of an asset in a folder (a pointer, not a copy)."""

    __tablename__ = "asset_folders"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    folder_id: Mapped[int] = mapped_column(
        ForeignKey("folders.id"), primary_key=True, index=True
    )


class Upload(Base):
    """One HTTP multipart upload of an asset's original, revision or replacement."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    """'create', 'revision' or 'replace'."""
    state: Mapped[str] = mapped_column(String(20))
    """'created', 'initiated', 'ingesting' (complete answered, the asset not yet
    updated: see PendingIngest), 'complete' or 'abandoned'."""
    key: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Bucket key of the parts; a new one on every initiate."""
    filename: Mapped[str] = mapped_column(String(1000))
    file_size: Mapped[int]
    part_size: Mapped[int | None]
    part_count: Mapped[int | None]
    batch_id: Mapped[int]
    """The ingest batch this upload belongs to."""
    created_at: Mapped[int]


class Part(Base):
    """A part that arrived for an upload, with the MD5 of what arrived."""

    __tablename__ = "parts"

    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id"), primary_key=True)
    part_number: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int]
    md5: Mapped[str] = mapped_column(String(32))
    confirmed: Mapped[bool] = mapped_column(default=False)
    """True once complete_parts named it with a matching (or no) checksum."""


class Revision(Base):
    """A completed revision of an asset; its bytes stay downloadable."""

    __tablename__ = "revisions"
    # IDs are never given out twice, as in Compass: a deleted record's ID stays dead.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    ingest_id: Mapped[int]
    mcs_id: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(1000))
    size: Mapped[int]
    checksum: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int]


class StoredObject(Base):
    """A file under objects/ that signed download URLs can serve."""

    __tablename__ = "objects"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    """Path relative to <data_dir>/objects."""
    filename: Mapped[str] = mapped_column(String(1000))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    md5: Mapped[str] = mapped_column(String(40))
    """The object's S3 ETag, unquoted (the column keeps its first name so that older
    data directories work): the MD5 hex of its bytes, or for a source assembled by
    a multipart upload, S3's "<MD5 of the parts' binary MD5s>-<part count>"."""


class PendingIngest(Base):
    """An upload completed (204) whose asset is not updated yet: --ingest-delay.

    The file is stored already (a StoredObject); the asset takes it, as a complete
    upload does, once the emulator's clock reaches `ready_at` (ingest.py). A table
    of its own, without foreign keys, so that older data directories keep working
    and deleting an asset needs no order.
    """

    __tablename__ = "pending_ingests"

    upload_id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(index=True)
    object_key: Mapped[str] = mapped_column(String(200))
    checksum: Mapped[str] = mapped_column(String(32))
    """MD5 hex of the whole file."""
    ready_at: Mapped[int] = mapped_column(index=True)
    """Epoch milliseconds (emulator clock) when the asset shows the new file."""


class Proxy(Base):
    """A generated proxy (thumbnail or rendition) of an asset's current file."""

    __tablename__ = "proxies"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    type: Mapped[str] = mapped_column(String(40), primary_key=True)
    object_key: Mapped[str] = mapped_column(String(200))
    size: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]


class RestoreRequest(Base):
    """One POST /api/v1/asset_items/restores, as asked (its ID is the answer's)."""

    __tablename__ = "restore_requests"
    # IDs are never given out twice, as in Compass: a deleted record's ID stays dead.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[int]
    asset_ids: Mapped[list[Any]]
    """The asset item IDs named in the request, in its order."""
    permanent: Mapped[bool]
    expedited: Mapped[bool]
    notify: Mapped[bool]
    """Kept as asked; the emulator sends no email."""
    expiry_days: Mapped[int | None]
    """Days a temporary restore stays out of the archive; None when permanent."""


class ArchiveState(Base):
    """An asset item sent to archive, and its restore if one was asked.

    A table of its own (no columns on `assets`) so that data directories made before
    archives existed keep working: `create_all` adds tables, never columns. No row
    means the asset is not archived. Restores finish and expire by the emulator's
    clock, read when the state is shown (archive.py), so nothing runs in the
    background.
    """

    __tablename__ = "archive_states"

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20))
    """'standard' (glacier) or 'deep' (deep glacier)."""
    archived_at: Mapped[int]
    restore_id: Mapped[int | None] = mapped_column(ForeignKey("restore_requests.id"))
    """The restore under way or done since the asset was archived, if any."""
    restore_ready_at: Mapped[int | None]
    """Epoch milliseconds when the restored file can be downloaded."""
    restore_permanent: Mapped[bool] = mapped_column(default=False)
    """True: once ready the asset is back in standard storage, not archived."""
    restore_expires_at: Mapped[int | None]
    """Epoch milliseconds when a temporary restore goes back to archive."""


Index("ix_uploads_asset_state", Upload.asset_id, Upload.state)


def open_database(db_path: Path) -> sessionmaker[Any]:
    """Create (if needed) the SQLite database and return a session factory."""
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    event.listen(engine, "connect", _tune_sqlite)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def core(db: Session | Connection) -> Connection:
    """The connection under `db`, for Core statements on the request hot paths.

    Statements run on it skip the ORM's per-call work (a few times cheaper than
    session.execute); a session's pending ORM changes are flushed first so they
    see them. The hottest routes use a plain Connection and no Session at all.
    """
    if isinstance(db, Connection):
        return db
    db.flush()
    return db.connection()


def engine_of(factory: sessionmaker[Any]) -> Engine:
    """The engine a session factory binds its sessions to."""
    bind = factory.kw.get("bind")
    assert isinstance(bind, Engine)
    return bind


def dispose(factory: sessionmaker[Any]) -> None:
    """Close every pooled connection of a session factory's engine."""
    engine_of(factory).dispose()

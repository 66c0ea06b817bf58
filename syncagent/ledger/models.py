"""SQLAlchemy models of the synced tree (what both sides agreed on) and work in flight.

Only this package imports SQLAlchemy. Queries built on these models stay portable (no
SQLite-only SQL) so a PostgreSQL ledger can be shared later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the ledger."""


class Mapping(Base):
    """A local root bound to a Compass folder."""

    __tablename__ = "mappings"
    __table_args__ = (UniqueConstraint("local_root", "folder_id"),)

    mapping_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, doc="Ledger-local ID of the mapping."
    )
    local_root: Mapped[str] = mapped_column(
        String(4096), doc="Absolute path of the local root folder."
    )
    folder_id: Mapped[int] = mapped_column(
        BigInteger, doc="Compass folder ID the root is bound to."
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When the mapping was first used."
    )


class Entry(Base):
    """A file or directory in the synced tree: the state both sides last agreed on."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("mapping_id", "rel_path"),
        Index("ix_entries_asset_id", "asset_id"),
    )

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping the entry belongs to.",
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Path below the local root, '/'-separated, as on disk."
    )
    kind: Mapped[str] = mapped_column(String(8), doc="'file' or 'dir'.")
    folder_id: Mapped[int | None] = mapped_column(
        BigInteger,
        doc="For a dir, the Compass folder it maps to; for a file, its asset's folder.",
    )
    asset_id: Mapped[int | None] = mapped_column(
        BigInteger, doc="Compass asset item ID of a file; None for a dir."
    )
    remote_name: Mapped[str | None] = mapped_column(
        String(1024), doc="Name of the asset or folder in Compass."
    )
    size: Mapped[int | None] = mapped_column(
        BigInteger, doc="File size in bytes at the last sync."
    )
    mtime_ns: Mapped[int | None] = mapped_column(
        BigInteger, doc="Local modification time (ns) at the last sync."
    )
    inode: Mapped[int | None] = mapped_column(
        BigInteger, doc="Local inode number at the last sync, to notice replacements."
    )
    checksum: Mapped[str | None] = mapped_column(
        String(32), doc="MD5 (hex) of the content both sides hold, verified end to end."
    )
    remote_updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), doc="The asset's updated_at when last synced."
    )
    origin: Mapped[str] = mapped_column(
        String(8), default="local", doc="'local' if ingested here, 'remote' if pulled."
    )
    synced_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When both sides last agreed on this entry."
    )


class Upload(Base):
    """An upload in flight, checkpointed so that a crash resumes, not repeats, it."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("mapping_id", "rel_path"),)

    upload_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping of the file being uploaded.",
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Path of the file below the local root."
    )
    kind: Mapped[str] = mapped_column(
        String(8), doc="'new' for a new asset, 'revision' for a new revision."
    )
    folder_id: Mapped[int] = mapped_column(
        BigInteger, doc="Compass folder the asset is (to be) in."
    )
    remote_name: Mapped[str] = mapped_column(
        String(1024), doc="Name the asset is created or revised with."
    )
    asset_id: Mapped[int | None] = mapped_column(
        BigInteger, doc="Asset item ID once created (or adopted after a crash)."
    )
    file_size: Mapped[int] = mapped_column(
        BigInteger, doc="Size of the file when the upload began."
    )
    mtime_ns: Mapped[int] = mapped_column(
        BigInteger, doc="Modification time (ns) of the file when the upload began."
    )
    inode: Mapped[int] = mapped_column(
        BigInteger, doc="Inode of the file when the upload began."
    )
    part_size: Mapped[int | None] = mapped_column(
        BigInteger, doc="Part size given to initiate."
    )
    part_count: Mapped[int | None] = mapped_column(
        Integer, doc="Part count initiate answered."
    )
    state: Mapped[str] = mapped_column(
        String(16),
        doc="'creating' (asked for the asset), 'created', 'initiated', "
        "'completing' (asked to complete).",
    )
    checksum: Mapped[str | None] = mapped_column(
        String(32), doc="Whole-file MD5 (hex) once every byte was read."
    )
    owner: Mapped[str] = mapped_column(
        String(256), doc="Process working on it: host:pid:nonce."
    )
    lease_expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="After this, another process may take it over."
    )
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When the upload began."
    )
    attempts: Mapped[int] = mapped_column(
        Integer, default=1, doc="How many runs have worked on it."
    )


class UploadPart(Base):
    """A part of an upload in flight that Compass confirmed (complete_parts)."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.upload_id", ondelete="CASCADE"),
        primary_key=True,
        doc="Upload the part belongs to.",
    )
    part_number: Mapped[int] = mapped_column(
        Integer, primary_key=True, doc="Part number, from 1."
    )
    checksum: Mapped[str] = mapped_column(String(32), doc="MD5 (hex) of the part.")
    size: Mapped[int] = mapped_column(BigInteger, doc="Bytes in the part.")


class RevisionRecord(Base):
    """A revision this agent uploaded, kept as history."""

    __tablename__ = "revisions"
    __table_args__ = (Index("ix_revisions_asset_id", "asset_id"),)

    revision_row_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, doc="Row ID."
    )
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping of the revised file.",
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Path of the file when it was revised."
    )
    asset_id: Mapped[int] = mapped_column(BigInteger, doc="Asset item revised.")
    checksum: Mapped[str] = mapped_column(String(32), doc="MD5 (hex) of the revision.")
    size: Mapped[int] = mapped_column(BigInteger, doc="Size of the revision in bytes.")
    uploaded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When the revision was verified in Compass."
    )


class Failure(Base):
    """The latest failure of an entry, until it syncs."""

    __tablename__ = "failures"
    __table_args__ = (UniqueConstraint("mapping_id", "rel_path"),)

    failure_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping of the failed entry.",
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Path of the failed entry below the local root."
    )
    operation: Mapped[str] = mapped_column(
        String(16), doc="What failed: 'scan', 'upload', 'download', ..."
    )
    reason: Mapped[str] = mapped_column(Text, doc="Why, in words a user can act on.")
    permanent: Mapped[bool] = mapped_column(
        Boolean, default=False, doc="True if retrying unchanged cannot succeed."
    )
    first_seen: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When it first failed."
    )
    last_seen: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When it last failed."
    )
    count: Mapped[int] = mapped_column(Integer, default=1, doc="Failures in a row.")


class PassRecord(Base):
    """One pass over a mapping: a scan-and-upload or a pull."""

    __tablename__ = "passes"
    __table_args__ = (Index("ix_passes_mapping_kind", "mapping_id", "kind"),)

    pass_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping the pass covered.",
    )
    kind: Mapped[str] = mapped_column(String(8), doc="'upload' or 'pull'.")
    owner: Mapped[str] = mapped_column(String(256), doc="Process that ran it.")
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When it started."
    )
    finished_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), doc="When it ended; None while running or if killed."
    )
    outcome: Mapped[str | None] = mapped_column(
        String(16), doc="'ok', 'failures' (some items failed) or 'error'."
    )
    summary: Mapped[str | None] = mapped_column(
        Text, doc="JSON counts of what the pass did."
    )


class AgentRecord(Base):
    """A process using this ledger, with a heartbeat so status can tell it is alive."""

    __tablename__ = "agents"

    owner: Mapped[str] = mapped_column(
        String(256), primary_key=True, doc="host:pid:nonce of the process."
    )
    kind: Mapped[str] = mapped_column(String(8), doc="'run' or 'sync'.")
    hostname: Mapped[str] = mapped_column(String(256), doc="Host it runs on.")
    pid: Mapped[int] = mapped_column(Integer, doc="Process ID on that host.")
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When it started."
    )
    heartbeat_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="Last sign of life."
    )


class ProxyFile(Base):
    """A proxy a pull placed in the mirror, and the source version it was made from."""

    __tablename__ = "proxy_files"
    __table_args__ = (
        UniqueConstraint("mapping_id", "folder_id", "asset_id", "proxy_type"),
    )

    proxy_file_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping whose mirror holds the proxy.",
    )
    folder_id: Mapped[int] = mapped_column(
        BigInteger, doc="Compass folder of the asset the proxy belongs to."
    )
    asset_id: Mapped[int] = mapped_column(
        BigInteger, doc="Asset item the proxy belongs to."
    )
    proxy_type: Mapped[str] = mapped_column(
        String(64), doc="Proxy type as Compass names it, e.g. 'large_thumbnail'."
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Path of the proxy file below the local root."
    )
    source_checksum: Mapped[str] = mapped_column(
        String(32), doc="MD5 of the asset's source when the proxy was fetched."
    )
    size: Mapped[int] = mapped_column(BigInteger, doc="Size of the proxy file.")
    fetched_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When the proxy was placed."
    )


class WithheldAsset(Base):
    """An asset (or folder) deleted locally in a two-way mapping and kept in Compass.

    A pull leaves it out while its checksum stays the same, so a local delete is not
    undone by the next pull.
    """

    __tablename__ = "withheld_assets"
    __table_args__ = (UniqueConstraint("mapping_id", "folder_id", "asset_id"),)

    withheld_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping the deletion happened in.",
    )
    folder_id: Mapped[int] = mapped_column(
        BigInteger, doc="Compass folder of the asset, or the folder withheld itself."
    )
    asset_id: Mapped[int] = mapped_column(
        BigInteger, doc="Asset item withheld; 0 when the folder itself is withheld."
    )
    checksum: Mapped[str | None] = mapped_column(
        String(32),
        doc="The asset's MD5 when it was deleted locally; None for a folder.",
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Where it was below the local root when it was deleted."
    )
    withheld_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), doc="When the local deletion was noticed."
    )


class Placement(Base):
    """A download about to be renamed into place, noted before the rename.

    A run stopped between the rename and the record leaves a file of the agent's
    that the ledger does not know; the next pass finds this note, sees the file as
    it was placed, and records it (a rename in Compass meanwhile would otherwise
    leave it as a stray local file, and a two-way mapping would upload it again).
    """

    __tablename__ = "placements"
    __table_args__ = (UniqueConstraint("mapping_id", "rel_path"),)

    placement_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="Row ID.")
    mapping_id: Mapped[int] = mapped_column(
        ForeignKey("mappings.mapping_id", ondelete="CASCADE"),
        doc="Mapping the download belongs to.",
    )
    rel_path: Mapped[str] = mapped_column(
        String(4096), doc="Where the file is being placed below the local root."
    )
    replaces: Mapped[str | None] = mapped_column(
        String(4096), doc="The entry's old path when the asset's file moves there."
    )
    folder_id: Mapped[int | None] = mapped_column(BigInteger, doc="Asset's folder.")
    asset_id: Mapped[int] = mapped_column(BigInteger, doc="Asset item downloaded.")
    remote_name: Mapped[str | None] = mapped_column(
        String(1024), doc="Name of the asset in Compass."
    )
    size: Mapped[int] = mapped_column(BigInteger, doc="Size of the placed file.")
    mtime_ns: Mapped[int] = mapped_column(
        BigInteger, doc="Modification time (ns) of the file being placed."
    )
    inode: Mapped[int] = mapped_column(BigInteger, doc="Inode of the file.")
    checksum: Mapped[str | None] = mapped_column(
        String(32), doc="The asset's MD5, which the download verified."
    )
    remote_updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), doc="The asset's updated_at."
    )
    origin: Mapped[str] = mapped_column(
        String(8), doc="The entry's origin once recorded ('local' or 'remote')."
    )

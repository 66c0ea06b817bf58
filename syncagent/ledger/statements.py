"""Ledger statements built once: an upload writes the ledger a few times, and
building a statement costs more than running it."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, update

from syncagent.ledger.models import Entry, Failure, Upload

ENTRY_COLUMNS = (
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


ENTRY_VALUES = (
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
UPDATE_ENTRY = (
    update(Entry)
    .where(
        Entry.mapping_id == bindparam("b_mapping_id"),
        Entry.rel_path == bindparam("b_rel_path"),
    )
    .values({name: bindparam(f"b_{name}") for name in ENTRY_VALUES})
)
INSERT_ENTRY = insert(Entry)
INSERT_UPLOAD = insert(Upload)
SET_ASSET = (
    update(Upload)
    .where(Upload.upload_id == bindparam("b_upload_id"))
    .values(asset_id=bindparam("b_asset_id"), state="created")
)
SET_COMPLETING = (
    update(Upload)
    .where(Upload.upload_id == bindparam("b_upload_id"))
    .values(state="completing", checksum=bindparam("b_checksum"))
)
DELETE_UPLOAD = delete(Upload).where(Upload.upload_id == bindparam("b_upload_id"))
DELETE_FAILURE = delete(Failure).where(
    Failure.mapping_id == bindparam("b_mapping_id"),
    Failure.rel_path == bindparam("b_rel_path"),
)

"""Completing an upload: check the parts, join them off the event loop, record it.

With an ingest delay (--ingest-delay) the file is stored at once but the asset
takes it only later: see ingest.py.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from syncagent.emulator.assembly import Layout
from syncagent.emulator.db import (
    Asset,
    Part,
    PendingIngest,
    Record,
    Revision,
    StoredObject,
    Upload,
)
from syncagent.emulator.objects import SOURCES
from syncagent.emulator.proxies import makes_proxies
from syncagent.emulator.records import drop_proxies, release_source
from syncagent.emulator.vocabulary import asset_class_for
from syncagent.emulator.web import ApiError

if TYPE_CHECKING:
    from syncagent.emulator.context import EmulatorContext

logger = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024

COMPLETION_COLUMNS = (
    Upload.id,
    Upload.asset_id,
    Upload.kind,
    Upload.state,
    Upload.key,
    Upload.filename,
    Upload.file_size,
    Upload.part_size,
    Upload.part_count,
    Upload.batch_id,
    Asset.asset_class,
    Asset.object_key,
)
"""What finish_upload needs to know of an upload and of its asset as it stood
(a query selecting them joins Asset and Upload)."""

_NEW_FILE_COLUMNS = (
    "asset_class",
    "mcs_id",
    "status",
    "size",
    "checksum",
    "object_key",
    "proxy_state",
    "updated_at",
    "uploaded_at",
)

_PARTS = (
    select(Part.part_number, Part.size, Part.md5, Part.confirmed)
    .where(Part.upload_id == bindparam("of_upload"))
    .order_by(Part.part_number)
)
_ADD_OBJECT = insert(StoredObject)
_NEW_FILE = (
    update(Asset)
    .where(Asset.id == bindparam("of_asset"))
    .values({name: bindparam(f"new_{name}") for name in _NEW_FILE_COLUMNS})
)
_NEW_FILE_RENAMED = _NEW_FILE.values(
    name=bindparam("new_name"), file_name=bindparam("new_file_name")
)
"""For a revision or replacement: the asset takes the new file's name too."""
_ADD_REVISION = insert(Revision)
_MOVE_STATE = (
    update(Upload)
    .where(Upload.id == bindparam("of_upload"), Upload.state == bindparam("from"))
    .values(state=bindparam("to"))
)
"""Changes no row once the upload was abandoned or its asset deleted."""
_DROP_PARTS = delete(Part).where(Part.upload_id == bindparam("of_upload"))
_HOLD = insert(PendingIngest)


def parts_of(db: Connection, upload_id: int) -> list[Record]:
    """Return the parts recorded for an upload, by part number."""
    return list(db.execute(_PARTS, {"of_upload": upload_id}))


async def finish_upload(
    ctx: EmulatorContext, upload: Record, parts: list[Record]
) -> None:
    """Check, assemble and record `upload` (its COMPLETION_COLUMNS) from its
    `parts`; raise ApiError(422) if unfit."""
    assert upload.key is not None
    errors = completion_errors(upload, parts)
    if errors:
        raise ApiError(422, *errors)

    # Join the parts on a worker thread: other requests keep flowing meanwhile.
    dest_key = ctx.objects.new_key(SOURCES)
    if len(parts) == 1:
        # Two renames and a mkdir: cheaper here than the hop to a thread and back.
        ctx.objects.adopt_single_part(upload.key, dest_key)
        md5_hex = parts[0].md5
    else:
        layout = Layout(upload.file_size, upload.part_size, upload.part_count)
        md5_hex = await ctx.assembler.finish(upload.key, layout, dest_key)

    with ctx.engine.begin() as db:
        _store(ctx, db, upload, dest_key, multipart_etag(parts))
        if ctx.ingest_delay > 0:
            ready_at = _hold(ctx, db, upload, dest_key, md5_hex)
            adopted = None
        else:
            adopted = adopt(ctx, db, upload, dest_key, md5_hex)
    if adopted is None:
        ctx.ingests.note(ready_at)
        logger.info("asset %s: upload complete, ingest pending", upload.asset_id)
    else:
        after_adopt(ctx, upload, dest_key, adopted)


def multipart_etag(parts: Sequence[Any]) -> str:
    """S3's ETag of an object assembled from `parts` (Part records, by number): the
    MD5 of their binary MD5s joined, then a dash and their count."""
    digests = b"".join(bytes.fromhex(part.md5) for part in parts)
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"


def completion_errors(upload: Any, parts: Sequence[Any]) -> list[str]:
    """Return why the parts cannot make the file (empty when they can).

    `upload` and `parts` are Upload and Part records (ORM objects or rows).
    """
    assert upload.part_count is not None
    by_number = {part.part_number: part for part in parts}
    errors = [
        f"part {number} was not uploaded"
        for number in range(1, upload.part_count + 1)
        if number not in by_number
    ]
    errors += [
        f"part {part.part_number} was not confirmed with complete_parts"
        for part in parts
        if not part.confirmed
    ]
    errors += [
        f"part {part.part_number} is {part.size} bytes; every part but the last "
        f"must be at least {MIN_PART_SIZE} bytes"
        for part in parts
        if part.part_number < upload.part_count and part.size < MIN_PART_SIZE
    ]
    total = sum(part.size for part in parts)
    if not errors and total != upload.file_size:
        errors.append(
            f"the parts add up to {total} bytes but file_size is {upload.file_size}"
        )
    return errors


def _store(
    ctx: EmulatorContext, db: Connection, upload: Record, dest_key: str, etag: str
) -> None:
    """Mark the upload done and record its file as a stored object."""
    state = "ingesting" if ctx.ingest_delay > 0 else "complete"
    moved = db.execute(
        _MOVE_STATE, {"of_upload": upload.id, "from": "initiated", "to": state}
    )
    if not moved.rowcount:
        ctx.objects.delete(dest_key)
        raise ApiError(422, "the upload was superseded while it was completing")

    content_type = mimetypes.guess_type(upload.filename)[0]
    db.execute(
        _ADD_OBJECT,
        {
            "key": dest_key,
            "filename": upload.filename,
            "content_type": content_type or "application/octet-stream",
            "size": upload.file_size,
            "md5": etag,
        },
    )
    db.execute(_DROP_PARTS, {"of_upload": upload.id})


def _hold(
    ctx: EmulatorContext, db: Connection, upload: Record, dest_key: str, md5_hex: str
) -> int:
    """Leave the asset as it is until the ingest delay has passed; return when
    that is (epoch ms)."""
    ready_at = ctx.clock.now_ms() + round(ctx.ingest_delay * 1000)
    db.execute(
        _HOLD,
        {
            "upload_id": upload.id,
            "asset_id": upload.asset_id,
            "object_key": dest_key,
            "checksum": md5_hex,
            "ready_at": ready_at,
        },
    )
    return ready_at


def adopt(
    ctx: EmulatorContext, db: Connection, upload: Record, dest_key: str, md5_hex: str
) -> tuple[str, list[str]]:
    """Make the stored file `dest_key` the asset's; return the asset's class and
    the object keys no longer needed (delete them after the transaction)."""
    stale = _release_old_file(db, upload)
    asset_class = _adopt_file(db, upload, dest_key, md5_hex, now=ctx.clock.now_ms())
    return asset_class, stale


def after_adopt(
    ctx: EmulatorContext, upload: Record, dest_key: str, adopted: tuple[str, list[str]]
) -> None:
    """Once adopt() is committed: drop the stale files, start the proxies."""
    asset_class, stale = adopted
    for key in stale:
        ctx.objects.delete(key)
    if makes_proxies(asset_class):
        ctx.proxy_jobs.submit(upload.asset_id, dest_key, asset_class)
    logger.info(
        "asset %s: %s upload complete (%d bytes)",
        upload.asset_id,
        upload.kind,
        upload.file_size,
    )


def _release_old_file(db: Connection, upload: Record) -> list[str]:
    """Forget the asset's proxies and former file; return the keys to delete.

    The asset's file is the one it had when the upload began to complete: no
    other upload of it can have completed since (the newest one alone may).
    """
    if upload.object_key is None:
        return []  # never completed: no file and no proxies yet
    return drop_proxies(db, upload.asset_id) + release_source(db, upload.object_key)


def _adopt_file(
    db: Connection, upload: Record, key: str, md5_hex: str, *, now: int
) -> str:
    """Point the asset at its new file (a revision upload also records a revision);
    return the asset's class."""
    renamed = upload.kind != "create"
    asset_class = asset_class_for(upload.filename) if renamed else upload.asset_class
    values: dict[str, Any] = {
        "asset_class": asset_class,
        "mcs_id": uuid.uuid4().hex,
        "status": "complete",
        "size": upload.file_size,
        "checksum": md5_hex,
        "object_key": key,
        "proxy_state": "pending" if makes_proxies(asset_class) else "done",
        "updated_at": now,
        "uploaded_at": now,
    }
    if renamed:
        values.update(name=upload.filename, file_name=upload.filename)
    params = {f"new_{name}": value for name, value in values.items()}
    statement = _NEW_FILE_RENAMED if renamed else _NEW_FILE
    db.execute(statement, params | {"of_asset": upload.asset_id})
    if upload.kind == "revision":
        revision = {
            "asset_id": upload.asset_id,
            "ingest_id": upload.batch_id,
            "mcs_id": values["mcs_id"],
            "filename": upload.filename,
            "size": upload.file_size,
            "checksum": md5_hex,
            "object_key": key,
            "created_at": now,
        }
        db.execute(_ADD_REVISION, revision)
    return str(asset_class)

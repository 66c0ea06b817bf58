"""Completing an upload: check the parts, join them off the event loop, record it."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from syncagent.emulator.db import Asset, Part, Revision, StoredObject, Upload
from syncagent.emulator.records import drop_proxies, release_source
from syncagent.emulator.vocabulary import asset_class_for
from syncagent.emulator.web import ApiError

if TYPE_CHECKING:
    from syncagent.emulator.context import EmulatorContext

logger = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024


async def finish_upload(ctx: EmulatorContext, upload_id: int) -> None:
    """Check, assemble and record upload `upload_id`; raise ApiError(422) if unfit."""
    with ctx.sessions() as session:
        upload = session.get(Upload, upload_id)
        assert upload is not None and upload.key is not None
        query = select(Part).where(Part.upload_id == upload_id)
        parts = sorted(session.scalars(query), key=lambda part: part.part_number)
    errors = completion_errors(upload, parts)
    if errors:
        raise ApiError(422, *errors)

    # Join the parts on a worker thread: other requests keep flowing meanwhile.
    dest_key = ctx.objects.new_key("sources")
    if len(parts) == 1:
        await asyncio.to_thread(ctx.objects.adopt_single_part, upload.key, dest_key)
        md5_hex = parts[0].md5
    else:
        md5_hex = await ctx.assembler.finish(upload.key, len(parts), dest_key)

    asset_id, asset_class, stale = _record(ctx, upload_id, dest_key, md5_hex)
    for key in stale:
        ctx.objects.delete(key)
    ctx.proxy_jobs.submit(asset_id, dest_key, asset_class)
    logger.info(
        "asset %s: %s upload complete (%d bytes)",
        asset_id,
        upload.kind,
        upload.file_size,
    )


def completion_errors(upload: Upload, parts: list[Part]) -> list[str]:
    """Return why the parts cannot make the file (empty when they can)."""
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


def _record(
    ctx: EmulatorContext, upload_id: int, dest_key: str, md5_hex: str
) -> tuple[int, str, list[str]]:
    """Make the new file the asset's; return its ID, class and stale object keys."""
    with ctx.sessions.begin() as session:
        upload = session.get(Upload, upload_id)
        asset = session.get(Asset, upload.asset_id) if upload else None
        if upload is None or asset is None or upload.state != "initiated":
            ctx.objects.delete(dest_key)
            raise ApiError(422, "the upload was superseded while it was completing")

        content_type = mimetypes.guess_type(upload.filename)[0]
        session.add(
            StoredObject(
                key=dest_key,
                filename=upload.filename,
                content_type=content_type or "application/octet-stream",
                size=upload.file_size,
                md5=md5_hex,
            )
        )
        stale = drop_proxies(session, asset.id) + release_source(
            session, asset.object_key
        )
        _adopt_file(session, asset, upload, dest_key, md5_hex, now=ctx.clock.now_ms())
        upload.state = "complete"
        session.execute(delete(Part).where(Part.upload_id == upload_id))
        return asset.id, asset.asset_class, stale


def _adopt_file(
    session: Session, asset: Asset, upload: Upload, key: str, md5_hex: str, *, now: int
) -> None:
    """Point the asset at its new file; a revision upload also records a revision."""
    asset.mcs_id = uuid.uuid4().hex
    if upload.kind != "create":
        asset.name = asset.file_name = upload.filename
        asset.asset_class = asset_class_for(upload.filename)
    if upload.kind == "revision":
        session.add(
            Revision(
                asset_id=asset.id,
                ingest_id=upload.batch_id,
                mcs_id=asset.mcs_id,
                filename=upload.filename,
                size=upload.file_size,
                checksum=md5_hex,
                object_key=key,
                created_at=now,
            )
        )
    asset.status, asset.size, asset.checksum = "complete", upload.file_size, md5_hex
    asset.object_key, asset.proxy_state = key, "pending"
    asset.updated_at = asset.uploaded_at = now

"""The multipart calls on an asset: initiate, upload URLs, complete parts, complete."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from syncagent.emulator.access import require_asset
from syncagent.emulator.completion import finish_upload
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.db import Part, Upload
from syncagent.emulator.validate import as_list, as_object, get_int, invalid, is_int
from syncagent.emulator.web import Call, api_route, created, no_content

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
_BASE = "/api/v2/multipart/asset_items/{asset_id}"


def current_upload(session: Session, asset_id: int) -> Upload | None:
    """Return the newest upload of an asset, if any."""
    query = select(Upload).where(Upload.asset_id == asset_id).order_by(Upload.id.desc())
    return session.scalars(query.limit(1)).first()


def _pending_upload(session: Session, call: Call, state: str) -> Upload:
    asset_id = call.path_int("asset_id")
    require_asset(session, call.user_id, asset_id, "upload")
    upload = current_upload(session, asset_id)
    if upload is None or upload.state not in ("created", "initiated"):
        raise invalid(
            f"asset item {asset_id} has no upload in progress; "
            "create a revision or replacement first"
        )
    if state == "initiated" and upload.state != "initiated":
        raise invalid(f"the upload of asset item {asset_id} was not initiated")
    if upload.id in call.ctx.completions:
        raise invalid(f"the upload of asset item {asset_id} is being completed")
    return upload


async def initiate(call: Call) -> Response:
    """Start (or restart) the multipart upload; answer the part count."""
    body = as_object(call.body)
    part_size = get_int(body, "part_size", minimum=1)

    with call.ctx.sessions.begin() as session:
        upload = _pending_upload(session, call, "created")
        part_count = max(1, math.ceil(upload.file_size / part_size))
        if part_count > 1 and part_size < MIN_PART_SIZE:
            raise invalid(
                f"part_size must be at least {MIN_PART_SIZE} bytes when the file "
                f"({upload.file_size} bytes) needs more than one part"
            )
        if part_count > MAX_PARTS:
            raise invalid(
                f"part_size {part_size} would need {part_count} parts; "
                f"at most {MAX_PARTS} are allowed"
            )
        old_key = upload.key
        session.execute(delete(Part).where(Part.upload_id == upload.id))
        upload.key = uuid.uuid4().hex
        upload.part_size, upload.part_count = part_size, part_count
        upload.state = "initiated"
    if old_key:
        call.ctx.assembler.discard(old_key)

    return created({"part_count": part_count})


async def retrieve_upload_urls(call: Call) -> Response:
    """Answer presigned PUT URLs for the requested part numbers."""
    body = as_object(call.body)
    numbers = as_list(body.get("part_numbers"), "part_numbers")
    if not numbers or not all(is_int(n) for n in numbers):
        raise invalid("part_numbers must be a non-empty array of integers")

    with call.ctx.sessions() as session:
        upload = _pending_upload(session, call, "initiated")
    assert upload.key is not None and upload.part_count is not None
    bad = [n for n in numbers if not 1 <= n <= upload.part_count]
    if bad:
        raise invalid(f"part_numbers out of range 1..{upload.part_count}: {bad}")

    urls = [
        {
            "part_number": number,
            "upload_url": call.ctx.signer.sign(
                call.base_url,
                "PUT",
                f"/s3/parts/{upload.key}/{number}",
                call.ctx.url_ttl,
            ),
        }
        for number in numbers
    ]
    return created({"retrieve_upload_urls": urls})


async def complete_parts(call: Call) -> Response:
    """Confirm uploaded parts, checking each given checksum against what arrived."""
    body = as_object(call.body)
    claims = _parse_part_claims(body.get("parts"))

    with call.ctx.sessions.begin() as session:
        upload = _pending_upload(session, call, "initiated")
        query = select(Part).where(
            Part.upload_id == upload.id, Part.part_number.in_(list(claims))
        )
        parts = {part.part_number: part for part in session.scalars(query)}
        errors = _claim_errors(claims, parts)
        if errors:
            raise invalid(*errors)
        for part in parts.values():
            part.confirmed = True
    return no_content()


def _parse_part_claims(value: Any) -> dict[int, str | None]:
    items = as_list(value, "parts")
    if not items:
        raise invalid("parts must not be empty")
    claims: dict[int, str | None] = {}
    for index, raw in enumerate(items):
        item = as_object(raw, f"parts[{index}]")
        number = get_int(item, "part_number", minimum=1, where=f"parts[{index}].")
        checksum = item.get("checksum")
        if checksum is not None and not isinstance(checksum, str):
            raise invalid(f"parts[{index}].checksum must be a string")
        claims[number] = checksum
    return claims


def _claim_errors(claims: dict[int, str | None], parts: dict[int, Part]) -> list[str]:
    errors = []
    for number, checksum in sorted(claims.items()):
        part = parts.get(number)
        if part is None:
            errors.append(f"part {number} was not uploaded")
        elif checksum is not None and checksum.strip().lower() != part.md5:
            errors.append(
                f"part {number}: checksum {checksum} is not the MD5 of the "
                f"uploaded bytes ({part.md5})"
            )
    return errors


async def complete(call: Call) -> Response:
    """Assemble the parts into the asset's file; answer once it is complete.

    Repeating it is safe: a second call while the first is still assembling
    waits for the same work, and a call after success answers 204 again.
    """
    asset_id = call.path_int("asset_id")
    with call.ctx.sessions() as session:
        require_asset(session, call.user_id, asset_id, "upload")
        upload = current_upload(session, asset_id)
        if upload is not None and upload.state == "complete":
            return no_content()
        running = call.ctx.completions.get(upload.id) if upload else None
        if running is None:
            upload = _pending_upload(session, call, "initiated")
            running = _start_completion(call.ctx, upload.id)
    await asyncio.shield(running)
    return no_content()


def _start_completion(ctx: EmulatorContext, upload_id: int) -> asyncio.Future[None]:
    task = asyncio.ensure_future(finish_upload(ctx, upload_id))
    ctx.completions[upload_id] = task
    task.add_done_callback(lambda _done: ctx.completions.pop(upload_id, None))
    return task


def routes() -> list[Route]:
    """The multipart upload routes."""
    return [
        api_route("POST", f"{_BASE}/initiate", initiate),
        api_route("POST", f"{_BASE}/retrieve_upload_urls", retrieve_upload_urls),
        api_route("POST", f"{_BASE}/complete_parts", complete_parts),
        api_route("POST", f"{_BASE}/complete", complete),
    ]

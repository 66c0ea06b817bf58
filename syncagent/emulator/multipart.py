"""The multipart calls on an asset: initiate, upload URLs, complete parts, complete."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from starlette.responses import Response
from starlette.routing import Route

from syncagent.emulator.access import missing_asset, require_flag
from syncagent.emulator.completion import COMPLETION_COLUMNS, finish_upload, parts_of
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.db import Asset, AssetFolder, Part, Record, Upload
from syncagent.emulator.validate import as_list, as_object, get_int, invalid, is_int
from syncagent.emulator.web import Call, api_route, created, no_content

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
_BASE = "/api/v2/multipart/asset_items/{asset_id}"

_NEWEST = aliased(Upload)
_ASSET_UPLOAD = (
    select(AssetFolder.folder_id, *COMPLETION_COLUMNS)
    .select_from(Asset)
    .outerjoin(AssetFolder, AssetFolder.asset_id == Asset.id)
    .outerjoin(
        Upload,
        Upload.id
        == select(func.max(_NEWEST.id))
        .where(_NEWEST.asset_id == Asset.id)
        .scalar_subquery(),
    )
    .where(Asset.id == bindparam("asset_id"))
)
"""An asset's folders (one row each) with its newest upload, in one query."""
_DROP_PARTS = delete(Part).where(Part.upload_id == bindparam("upload_id"))
_START = (
    update(Upload)
    .where(Upload.id == bindparam("upload_id"))
    .values(
        key=bindparam("new_key"),
        part_size=bindparam("new_part_size"),
        part_count=bindparam("new_part_count"),
        state="initiated",
    )
)
_CLAIMED_PARTS = select(Part.part_number, Part.md5).where(
    Part.upload_id == bindparam("of_upload"),
    Part.part_number.in_(bindparam("numbers", expanding=True)),
)
_CONFIRM_PARTS = (
    update(Part)
    .where(
        Part.upload_id == bindparam("of_upload"),
        Part.part_number.in_(bindparam("numbers", expanding=True)),
    )
    .values(confirmed=True)
)


def current_upload(db: Connection, call: Call, asset_id: int) -> Record | None:
    """Check that the user may upload to the asset (404/410, 403); return its newest
    upload, if any (its COMPLETION_COLUMNS)."""
    rows = db.execute(_ASSET_UPLOAD, {"asset_id": asset_id}).all()
    if not rows:
        raise missing_asset(db, asset_id)
    folder_ids = [row.folder_id for row in rows if row.folder_id is not None]
    require_flag(db, call.user_id, asset_id, folder_ids, "upload")
    return rows[0] if rows[0].id is not None else None


def _pending_upload(db: Connection, call: Call, state: str) -> Record:
    asset_id = call.path_int("asset_id")
    upload = current_upload(db, call, asset_id)
    return _check_pending(call, asset_id, upload, state)


def _check_pending(
    call: Call, asset_id: int, upload: Record | None, state: str
) -> Record:
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

    with call.ctx.engine.begin() as db:
        upload = _pending_upload(db, call, "created")
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
        if upload.key:
            # Parts exist only under a key, so a first initiate has none to drop.
            db.execute(_DROP_PARTS, {"upload_id": upload.id})
        db.execute(
            _START,
            {
                "upload_id": upload.id,
                "new_key": uuid.uuid4().hex,
                "new_part_size": part_size,
                "new_part_count": part_count,
            },
        )
    if upload.key:
        call.ctx.assembler.discard(upload.key)

    return created({"part_count": part_count})


async def retrieve_upload_urls(call: Call) -> Response:
    """Answer presigned PUT URLs for the requested part numbers."""
    body = as_object(call.body)
    numbers = as_list(body.get("part_numbers"), "part_numbers")
    if not numbers or not all(is_int(n) for n in numbers):
        raise invalid("part_numbers must be a non-empty array of integers")

    with call.ctx.engine.connect() as db:
        upload = _pending_upload(db, call, "initiated")
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

    with call.ctx.engine.begin() as db:
        upload = _pending_upload(db, call, "initiated")
        params = {"of_upload": upload.id, "numbers": list(claims)}
        md5s = {number: md5 for number, md5 in db.execute(_CLAIMED_PARTS, params)}
        errors = _claim_errors(claims, md5s)
        if errors:
            raise invalid(*errors)
        db.execute(_CONFIRM_PARTS, params)
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


def _claim_errors(claims: dict[int, str | None], md5s: dict[int, str]) -> list[str]:
    errors = []
    for number, checksum in sorted(claims.items()):
        md5_hex = md5s.get(number)
        if md5_hex is None:
            errors.append(f"part {number} was not uploaded")
        elif checksum is not None and checksum.strip().lower() != md5_hex:
            errors.append(
                f"part {number}: checksum {checksum} is not the MD5 of the "
                f"uploaded bytes ({md5_hex})"
            )
    return errors


async def complete(call: Call) -> Response:
    """Assemble the parts into the asset's file; answer once it is stored (and the
    asset complete, unless an ingest delay holds that back: ingest.py).

    Repeating it is safe: a second call while the first is still assembling
    waits for the same work, and a call after success answers 204 again.
    """
    asset_id = call.path_int("asset_id")
    with call.ctx.engine.connect() as db:
        upload = current_upload(db, call, asset_id)
        if upload is not None and upload.state in ("ingesting", "complete"):
            return no_content()
        running = call.ctx.completions.get(upload.id) if upload else None
        if running is None:
            upload = _check_pending(call, asset_id, upload, "initiated")
            parts = parts_of(db, upload.id)
            running = _start_completion(call.ctx, upload, parts)
    await asyncio.shield(running)
    return no_content()


def _start_completion(
    ctx: EmulatorContext, upload: Record, parts: list[Record]
) -> asyncio.Future[None]:
    task = asyncio.ensure_future(finish_upload(ctx, upload, parts))
    upload_id = upload.id
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

"""Upload setup: new asset items, revisions and replacements over HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from syncagent.emulator.access import folder_flags, require_asset
from syncagent.emulator.db import Asset, AssetFolder, Folder, Part, Record, Upload
from syncagent.emulator.metadata import merge_fields, parse_fields, parse_titles
from syncagent.emulator.serialize import asset_created, asset_replacement
from syncagent.emulator.validate import (
    as_list,
    as_object,
    check_filename,
    get_int,
    get_int_list,
    get_str,
    invalid,
)
from syncagent.emulator.views import build_views
from syncagent.emulator.vocabulary import asset_class_for
from syncagent.emulator.web import ApiError, Call, api_route, created

ASPERA_MESSAGE = (
    "Aspera transfers are not supported by this emulator; "
    'use the HTTP multipart upload (upload_type "http")'
)
PENDING_STATES = ("created", "initiated")

_FOLDER_EXISTS = select(Folder.id).where(Folder.id == bindparam("folder_id"))
_ADD_ASSETS = insert(Asset).returning(Asset.id, sort_by_parameter_order=True)
_ASSETS_BY_ID = select(Asset.__table__).where(
    Asset.id.in_(bindparam("asset_ids", expanding=True))
)


async def create_assets(call: Call) -> Response:
    """Create asset items waiting for their HTTP multipart upload."""
    body = as_object(call.body)
    items = as_list(body.get("asset_items"), "asset_items")
    if not items:
        raise invalid("asset_items must not be empty")
    specs = [_parse_new_asset(raw, index) for index, raw in enumerate(items)]

    now = call.ctx.clock.now_ms()
    with call.ctx.engine.begin() as db:
        _check_folders(db, call.user_id, specs)
        batch_id = _next_batch_id(db)
        assets = _add_assets(db, call, specs, batch_id, now)
        views = build_views(db, call.ctx, call.base_url, call.user_id, assets)

    return created(
        {
            "connection_settings": {"allow_dialogs": True},
            "ingest_batch_id": batch_id,
            "asset_items": [asset_created(view) for view in views],
        }
    )


def _parse_new_asset(raw: Any, index: int) -> dict[str, Any]:
    where = f"asset_items[{index}]."
    item = as_object(raw, f"asset_items[{index}]")
    folder_ids = get_int_list(item, "folder_ids", where=where)
    if not folder_ids:
        raise invalid(f"{where}folder_ids must name at least one folder")
    if item.get("package"):
        raise invalid(f"{where}package: packages are not supported by this emulator")
    return {
        "name": check_filename(get_str(item, "name", where=where), f"{where}name"),
        "file_size": get_int(item, "file_size", minimum=0, where=where),
        "folder_ids": sorted(set(folder_ids)),
        "fields": parse_fields(
            item.get("custom_metadata_fields", []), f"{where}custom_metadata_fields"
        ),
        "titles": parse_titles(item, where) or [],
    }


def _check_folders(db: Connection, user_id: int, specs: list[dict[str, Any]]) -> None:
    """Raise unless every folder named exists and takes the user's uploads."""
    checked: set[int] = set()
    for spec in specs:
        for folder_id in spec["folder_ids"]:
            if folder_id in checked:
                continue
            if db.scalar(_FOLDER_EXISTS, {"folder_id": folder_id}) is None:
                raise invalid(f"folder_ids: folder {folder_id} does not exist")
            if not folder_flags(db, user_id, folder_id)["upload"]:
                raise ApiError(403, f"no upload permission on folder {folder_id}")
            checked.add(folder_id)


def _next_batch_id(db: Session | Connection) -> int:
    return (db.scalar(select(func.max(Upload.batch_id))) or 0) + 1


def _add_assets(
    db: Connection,
    call: Call,
    specs: list[dict[str, Any]],
    batch_id: int,
    now: int,
) -> list[Record]:
    """Add the assets, their folder memberships and their uploads; return the
    assets' rows. Each table takes one INSERT for the whole batch."""
    assert call.user is not None
    new_assets = [
        {
            "name": spec["name"],
            "file_name": spec["name"],
            "asset_class": asset_class_for(spec["name"]),
            "status": "created",
            "created_at": now,
            "updated_at": now,
            "uploaded_by": call.user.name,
            "custom_fields": merge_fields([], spec["fields"]),
            "titles": spec["titles"],
            "vocab": {},
        }
        for spec in specs
    ]
    ids = list(db.scalars(_ADD_ASSETS, new_assets))

    memberships = []
    uploads = []
    for asset_id, spec in zip(ids, specs, strict=True):
        memberships += [
            {"asset_id": asset_id, "folder_id": folder_id}
            for folder_id in spec["folder_ids"]
        ]
        uploads.append(
            {
                "asset_id": asset_id,
                "kind": "create",
                "state": "created",
                "filename": spec["name"],
                "file_size": spec["file_size"],
                "batch_id": batch_id,
                "created_at": now,
            }
        )
    db.execute(insert(AssetFolder), memberships)
    db.execute(insert(Upload), uploads)
    rows = {row.id: row for row in db.execute(_ASSETS_BY_ID, {"asset_ids": ids})}
    return [rows[asset_id] for asset_id in ids]


async def create_revision(call: Call) -> Response:
    """Start a new revision of a complete asset item."""
    return await _new_file_upload(call, "revision")


async def replace_asset(call: Call) -> Response:
    """Start replacing a complete asset item's file (no revision kept)."""
    return await _new_file_upload(call, "replace")


def _parse_file_upload(body: Any) -> tuple[int, str, int]:
    """Return the asset ID, filename and file size of a revision or replace call."""
    body = as_object(body)
    if body.get("upload_type", "aspera") != "http":
        raise invalid(f"upload_type: {ASPERA_MESSAGE}")
    item = as_object(body.get("asset_item"), "asset_item")
    asset_id = get_int(item, "asset_item_id", where="asset_item.")
    filename = get_str(item, "filename", where="asset_item.")
    file_size = get_int(item, "file_size", minimum=0, where="asset_item.")
    return asset_id, check_filename(filename, "asset_item.filename"), file_size


async def _new_file_upload(call: Call, kind: str) -> Response:
    asset_id, filename, file_size = _parse_file_upload(call.body)
    now = call.ctx.clock.now_ms()
    with call.ctx.sessions.begin() as session:
        asset = require_asset(session, call.user_id, asset_id, "upload")
        if asset.status != "complete":
            raise invalid(f"asset item {asset_id} has no completed upload to {kind}")
        abandoned = abandon_pending_uploads(session, asset_id)
        batch_id = _next_batch_id(session)
        session.add(
            Upload(
                asset_id=asset_id,
                kind=kind,
                state="created",
                filename=filename,
                file_size=file_size,
                batch_id=batch_id,
                created_at=now,
            )
        )
        views = build_views(session, call.ctx, call.base_url, call.user_id, [asset])
    for key in abandoned:
        call.ctx.assembler.discard(key)

    return created(
        {
            "connection_settings": {"allow_dialogs": True},
            "ingest_batch_id": batch_id,
            "package_transfer_specs": [],
            "asset_items": [asset_replacement(views[0])],
        }
    )


def abandon_pending_uploads(session: Session, asset_id: int) -> list[str]:
    """Mark an asset's unfinished uploads abandoned; return their part keys."""
    pending = select(Upload).where(
        Upload.asset_id == asset_id, Upload.state.in_(PENDING_STATES)
    )
    uploads = list(session.scalars(pending))
    keys = [upload.key for upload in uploads if upload.key]
    session.execute(delete(Part).where(Part.upload_id.in_([u.id for u in uploads])))
    session.execute(
        update(Upload)
        .where(Upload.asset_id == asset_id, Upload.state.in_(PENDING_STATES))
        .values(state="abandoned")
    )
    return keys


async def aspera_upload(call: Call) -> Response:
    """Refuse the Aspera upload setup with a clear message."""
    raise ApiError(422, ASPERA_MESSAGE)


def routes() -> list[Route]:
    """The upload setup routes."""
    return [
        api_route("POST", "/api/v2/uploads/http", create_assets),
        api_route("POST", "/api/v1/uploads", aspera_upload),
        api_route("POST", "/api/v1/asset_items/revisions", create_revision),
        api_route("POST", "/api/v1/asset_items/replace", replace_asset),
    ]

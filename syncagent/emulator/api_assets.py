"""Asset item routes: details, batch details, revisions, vocabularies, removal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.access import (
    combined_flags,
    folder_ids_of,
    load_asset,
    load_asset_record,
    require_asset,
)
from syncagent.emulator.db import Asset, AssetFolder, Revision
from syncagent.emulator.records import delete_asset
from syncagent.emulator.serialize import asset_detail
from syncagent.emulator.validate import (
    as_list,
    as_object,
    get_int,
    get_int_list,
    invalid,
)
from syncagent.emulator.views import build_views
from syncagent.emulator.vocabulary import VOCABULARIES
from syncagent.emulator.web import ApiError, Call, api_route, created

MAX_BATCH = 500


async def get_asset(call: Call) -> Response:
    """Answer one asset item's details."""
    asset_id = call.path_int("asset_id")
    with call.ctx.engine.connect() as db:
        asset = load_asset_record(db, asset_id)
        view = build_views(db, call.ctx, call.base_url, call.user_id, [asset])[0]
    # The view's flags are those require_asset checks: the union over its folders.
    if not view.flags["view"]:
        raise ApiError(403, f"no view permission on asset item {asset_id}")
    return JSONResponse(asset_detail(view))


async def batch_assets(call: Call) -> Response:
    """Answer the details of up to 500 asset items (unknown or hidden ones left out)."""
    body = as_object(call.body)
    ids = get_int_list(body, "ids")
    if len(ids) > MAX_BATCH:
        raise invalid(f"ids: at most {MAX_BATCH} asset items per call, got {len(ids)}")
    skip_actions = body.get("skip_actions") is True

    with call.ctx.sessions() as session:
        found = {
            a.id: a for a in session.scalars(select(Asset).where(Asset.id.in_(ids)))
        }
        ordered = [
            found[asset_id] for asset_id in dict.fromkeys(ids) if asset_id in found
        ]
        views = build_views(session, call.ctx, call.base_url, call.user_id, ordered)
    items = [
        asset_detail(view, skip_actions=skip_actions)
        for view in views
        if view.flags["view"]
    ]
    return JSONResponse({"asset_items": items})


async def list_revisions(call: Call) -> Response:
    """Answer the completed revisions of an asset item, oldest first."""
    asset_id = call.path_int("asset_id")
    with call.ctx.sessions() as session:
        require_asset(session, call.user_id, asset_id, "view")
        query = (
            select(Revision).where(Revision.asset_id == asset_id).order_by(Revision.id)
        )
        revisions = list(session.scalars(query))
    return JSONResponse(
        [{"id": r.id, "mcs_id": r.mcs_id, "ingest_id": r.ingest_id} for r in revisions]
    )


async def vocabularies(call: Call) -> Response:
    """Answer the vocabularies of the vocabulary-bound fields."""
    return JSONResponse(VOCABULARIES)


async def delete_from_folders(call: Call) -> Response:
    """Remove assets from folders; an asset left in no folder is deleted."""
    requests = [
        _parse_removal(raw, index)
        for index, raw in enumerate(as_list(call.body, "request body"))
    ]

    with call.ctx.sessions.begin() as session:
        for asset_id, folder_ids in requests:
            load_asset(session, asset_id)
            held = set(folder_ids_of(session, asset_id))
            for folder_id in folder_ids:
                if folder_id not in held:
                    raise invalid(f"asset item {asset_id} is not in folder {folder_id}")
                if not combined_flags(session, call.user_id, [folder_id])[
                    "asset_delete"
                ]:
                    raise ApiError(
                        403, f"no asset_delete permission on folder {folder_id}"
                    )
        doomed = _apply_removals(session, requests, call.ctx.clock.now_ms())
    for object_keys, part_keys in doomed:
        for key in object_keys:
            call.ctx.objects.delete(key)
        for key in part_keys:
            call.ctx.assembler.discard(key)
    return created({})


def _parse_removal(raw: Any, index: int) -> tuple[int, list[int]]:
    item = as_object(raw, f"[{index}]")
    asset_id = get_int(item, "asset_item_id", where=f"[{index}].")
    folder_ids = get_int_list(item, "folder_ids", where=f"[{index}].")
    if not folder_ids:
        raise invalid(f"[{index}].folder_ids must name at least one folder")
    return asset_id, folder_ids


def _apply_removals(
    session: Session, requests: list[tuple[int, list[int]]], now: int
) -> list[tuple[list[str], list[str]]]:
    doomed = []
    for asset_id, folder_ids in requests:
        session.execute(
            delete(AssetFolder).where(
                AssetFolder.asset_id == asset_id, AssetFolder.folder_id.in_(folder_ids)
            )
        )
        asset = session.get(Asset, asset_id)
        if asset is not None and not folder_ids_of(session, asset_id):
            doomed.append(delete_asset(session, asset))
        elif asset is not None:
            asset.updated_at = now
    return doomed


def routes() -> list[Route]:
    """The asset item routes (bulk_update lives in its own module)."""
    return [
        api_route("GET", "/api/v1/asset_items/{asset_id}", get_asset),
        api_route("POST", "/api/v1/asset_items/batch", batch_assets),
        api_route("GET", "/api/v1/asset_items/{asset_id}/revisions", list_revisions),
        api_route(
            "POST", "/api/v1/asset_items/delete_from_folders", delete_from_folders
        ),
        api_route("GET", "/api/v1/vocabularies", vocabularies),
    ]

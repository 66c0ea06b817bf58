"""Archive routes: send asset items to archive, restore them (archive.py has the rules).

Both change an asset as other asset writes do, so both need the upload permission on
one of its folders. Every asset is checked before any is changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from syncagent.emulator.access import check_asset, require_asset
from syncagent.emulator.archive import (
    archive_view,
    send_to_archive,
    start_restore,
)
from syncagent.emulator.db import ArchiveState, RestoreRequest
from syncagent.emulator.validate import as_object, get_int, get_int_list, invalid
from syncagent.emulator.web import Call, api_route, created

MAX_ITEMS = 500
DEFAULT_EXPIRY_DAYS = 30
MAX_EXPIRY_DAYS = 3650


async def archive_assets(call: Call) -> Response:
    """Send assets to the standard or the deep archive tier."""
    body = as_object(call.body)
    standard = get_int_list(body, "standard")
    deep = get_int_list(body, "deep")
    twice = sorted(set(standard) & set(deep))
    if twice:
        raise invalid(f"asset item {twice[0]} is named in both standard and deep")
    tiers = {**dict.fromkeys(standard, "standard"), **dict.fromkeys(deep, "deep")}
    _check_count(len(tiers), "standard and deep")

    now = call.ctx.clock.now_ms()
    with call.ctx.sessions.begin() as session:
        for asset_id in tiers:
            asset = require_asset(session, call.user_id, asset_id, "upload")
            if asset.status != "complete":
                raise invalid(f"asset item {asset_id} has no uploaded file to archive")
        for asset_id, tier in tiers.items():
            send_to_archive(session, asset_id, tier, now)
    return created({"asset_item_ids": list(tiers)})


async def restore_assets(call: Call) -> Response:
    """Start restores of archived assets; answer each one's minutes to wait."""
    body = as_object(call.body)
    asset_ids = list(dict.fromkeys(get_int_list(body, "asset_item_ids")))
    _check_count(len(asset_ids), "asset_item_ids")
    options = _restore_options(body)

    now = call.ctx.clock.now_ms()
    with call.ctx.sessions.begin() as session:
        states = [_archived_state(session, call.user_id, a, now) for a in asset_ids]
        request = RestoreRequest(
            created_by_id=call.user_id, created_at=now, asset_ids=asset_ids, **options
        )
        session.add(request)
        session.flush()
        items = []
        for state in states:
            view = start_restore(state, request, now)
            items.append(
                {
                    "id": state.asset_id,
                    "restore_minutes_remaining": view.minutes_remaining(),
                    "restoring": view.restoring,
                }
            )
        request_id = request.id
    return created(
        {"id": request_id, "created_by_id": call.user_id, "asset_items": items}
    )


def _check_count(count: int, where: str) -> None:
    if not 1 <= count <= MAX_ITEMS:
        raise invalid(f"{where} must name 1 to {MAX_ITEMS} asset items, got {count}")


def _restore_options(body: dict[str, Any]) -> dict[str, Any]:
    """The request's options with the reference's defaults."""
    permanent = _flag(body, "permanent")
    expiry_days: int | None = None
    if permanent:
        if body.get("expiry") is not None:
            raise invalid("expiry is not valid for permanent restores")
    elif body.get("expiry") is None:
        expiry_days = DEFAULT_EXPIRY_DAYS
    else:
        expiry_days = get_int(body, "expiry", minimum=1)
        if expiry_days > MAX_EXPIRY_DAYS:
            raise invalid(f"expiry must be at most {MAX_EXPIRY_DAYS} days")
    return {
        "permanent": permanent,
        "expedited": _flag(body, "expedited"),
        "notify": _flag(body, "notify"),
        "expiry_days": expiry_days,
    }


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise invalid(f"{key} must be true or false")
    return value


def _archived_state(
    session: Session, user_id: int, asset_id: int, now: int
) -> ArchiveState:
    check_asset(session, user_id, asset_id, "upload")
    state = session.get(ArchiveState, asset_id)
    if state is None or not archive_view(state, now).archived:
        raise invalid(f"asset item {asset_id} is not archived")
    return state


def routes() -> list[Route]:
    """The archive and restore routes."""
    return [
        api_route("POST", "/api/v1/asset_items/archives", archive_assets),
        api_route("POST", "/api/v1/asset_items/restores", restore_assets),
    ]

"""GET /api/v1/search: assets the user may view, filtered, sorted and paged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.db import Asset, AssetFolder, Permission
from syncagent.emulator.search import parse_filters, parse_query
from syncagent.emulator.serialize import asset_listing
from syncagent.emulator.validate import invalid
from syncagent.emulator.views import build_views
from syncagent.emulator.vocabulary import extension_of
from syncagent.emulator.web import Call, api_route

PAGE_SIZES = {"0": 50, "1": 100}
SORT_COLUMNS: dict[str, Any] = {
    "name": Asset.name,
    "type": Asset.asset_class,
    "size": Asset.size,
    "upload_date": Asset.uploaded_at,
}


async def search(call: Call) -> Response:
    """Answer one page of the assets matching `query` and `filters`."""
    params = call.request.query_params
    condition = and_(_visible_to(call.user_id), _condition(params))
    ordering = _ordering(params.get("column"), params.get("sort_direction", "asc"))
    page = _page_number(params.get("page", "1"))
    per_page = PAGE_SIZES.get(params.get("per_page_index", "0"))
    if per_page is None:
        raise invalid("per_page_index must be 0 or 1")
    with_aggregations = params.get("without_aggregations", "false").lower() != "true"

    with call.ctx.sessions() as session:
        counting = select(func.count()).select_from(Asset).where(condition)
        matches = session.scalar(counting) or 0
        rows = select(Asset).where(condition).order_by(*ordering)
        rows = rows.offset((page - 1) * per_page).limit(per_page)
        assets = list(session.scalars(rows))
        views = build_views(session, call.ctx, call.base_url, call.user_id, assets)
        aggregations = _aggregations(session, condition) if with_aggregations else None

    body: dict[str, Any] = {"aggregations": aggregations} if aggregations else {}
    body["asset_items"] = [asset_listing(view) for view in views]
    body["last_page"] = page * per_page >= matches
    body["matches"] = matches
    body["subscription_id"] = None
    return JSONResponse(body)


def _condition(params: Mapping[str, str]) -> ColumnElement[bool]:
    query = params.get("query")
    if query is None:
        raise invalid("query is required (use * for all assets)")
    return and_(parse_query(query), parse_filters(params.get("filters", "")))


def _page_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise invalid("page must be a whole number of at least 1")
    return int(text)


def _visible_to(user_id: int) -> ColumnElement[bool]:
    viewable = (
        select(AssetFolder.asset_id)
        .join(Permission, Permission.folder_id == AssetFolder.folder_id)
        .where(Permission.user_id == user_id, Permission.view.is_(True))
    )
    return Asset.id.in_(viewable)


def _ordering(column: str | None, direction: str) -> list[Any]:
    if direction not in ("asc", "desc"):
        raise invalid("sort_direction must be asc or desc")
    if column is None:
        return [Asset.id.desc() if direction == "desc" else Asset.id]
    key = SORT_COLUMNS.get(column)
    if key is None:
        raise invalid(f"column must be one of {', '.join(SORT_COLUMNS)}")
    key = key.desc() if direction == "desc" else key.asc()
    return [key, Asset.id]


def _aggregations(session: Session, condition: ColumnElement[bool]) -> dict[str, Any]:
    query = select(Asset.asset_class, Asset.name).where(condition)
    classes: Counter[str] = Counter()
    extensions: Counter[str] = Counter()
    for asset_class, name in session.execute(query):
        classes[asset_class] += 1
        extension = extension_of(name)
        if extension:
            extensions[extension] += 1
    return {"asset_class": dict(classes), "file_extension": dict(extensions)}


def routes() -> list[Route]:
    """The search route."""
    return [api_route("GET", "/api/v1/search", search)]

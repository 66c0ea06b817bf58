"""Proxy listing and download URLs: proxies, sources and revisions over HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.access import require_asset
from syncagent.emulator.api_uploads import ASPERA_MESSAGE
from syncagent.emulator.archive import require_retrievable
from syncagent.emulator.clock import ms_from_iso
from syncagent.emulator.db import Asset, Proxy, Revision
from syncagent.emulator.validate import as_list, as_object, get_int, invalid, is_int
from syncagent.emulator.web import ApiError, Call, api_route, not_found

LATEST_EXPIRATION_MS = ms_from_iso("2038-01-01T00:00:00Z")


def _proxies_of(session: Session, asset_id: int) -> list[Proxy]:
    query = select(Proxy).where(Proxy.asset_id == asset_id).order_by(Proxy.type)
    return list(session.scalars(query))


async def list_proxies(call: Call) -> Response:
    """Answer the proxies that exist for each asset item ('ids' or 'asset_items')."""
    body = as_object(call.body)
    raw_ids = body.get("ids", body.get("asset_items", []))
    ids = as_list(raw_ids, "ids")
    if not all(is_int(item) for item in ids):
        raise invalid("ids must be an array of asset item IDs")

    items = []
    with call.ctx.sessions() as session:
        for asset_id in ids:
            asset = require_asset(session, call.user_id, asset_id, "view")
            proxies = [
                {"height": p.height, "width": p.width, "size": p.size, "type": p.type}
                for p in _proxies_of(session, asset_id)
            ]
            items.append(
                {
                    "id": asset.id,
                    "asset_class": asset.asset_class,
                    "asset_name": asset.name,
                    "original_size": asset.size,
                    "proxies": proxies,
                }
            )
    return JSONResponse({"asset_items": items, "external_assets": []})


async def proxy_download_urls(call: Call) -> Response:
    """Answer a signed URL per requested proxy of each asset item."""
    body = as_object(call.body)
    ttl = _ttl_from_expiration(call, body.get("expiration"))
    requests = as_list(body.get("asset_items", []), "asset_items")

    items = []
    now = call.ctx.clock.now_ms()
    with call.ctx.sessions() as session:
        for index, raw in enumerate(requests):
            item = as_object(raw, f"asset_items[{index}]")
            asset_id = get_int(item, "id", where=f"asset_items[{index}].")
            wanted = as_list(item.get("proxies"), f"asset_items[{index}].proxies")
            _require_downloadable(session, call.user_id, asset_id, now)
            available = {p.type: p for p in _proxies_of(session, asset_id)}
            entry: dict[str, Any] = {"id": asset_id}
            for proxy_type in wanted:
                proxy = (
                    available.get(proxy_type) if isinstance(proxy_type, str) else None
                )
                if proxy is None:
                    raise invalid(
                        f"proxy {proxy_type!r} is not available "
                        f"for asset item {asset_id}"
                    )
                entry[proxy_type] = call.ctx.sign_download(
                    call.base_url, proxy.object_key, ttl
                )
            items.append(entry)
    return JSONResponse({"asset_items": items, "external_assets": []})


def _ttl_from_expiration(call: Call, expiration: Any) -> float | None:
    if expiration is None:
        return None
    try:
        expires_ms = ms_from_iso(str(expiration))
    except ValueError:
        raise invalid("expiration must be an ISO 8601 date and time") from None
    now_ms = call.ctx.clock.now_ms()
    if not now_ms < expires_ms < LATEST_EXPIRATION_MS:
        raise invalid("expiration must be between now and 2038-01-01")
    return (expires_ms - now_ms) / 1000


def _require_downloadable(
    session: Session, user_id: int, asset_id: int, now_ms: int
) -> Asset:
    asset = require_asset(session, user_id, asset_id, "download")
    if asset.status != "complete" or asset.object_key is None:
        raise invalid(f"asset item {asset_id} has no uploaded file yet")
    require_retrievable(session, asset_id, now_ms)
    return asset


async def download(call: Call) -> Response:
    """Answer {"url": ...} for one source, revision or proxy (method "http")."""
    body = as_object(call.body)
    if body.get("method") != "http":
        raise invalid(
            f"method: {ASPERA_MESSAGE}"
            if body.get("method") == "aspera"
            else 'method must be "http"'
        )
    items = as_list(body.get("items"), "items")
    if len(items) != 1:
        raise invalid("items: the http method takes exactly one item per call")
    item = as_object(items[0], "items[0]")
    if "external_asset_id" in item:
        raise invalid("items[0].external_asset_id: external assets are not supported")

    best = body.get("best_available_proxy") is True
    with call.ctx.sessions() as session:
        key = _object_for(session, call.user_id, item, best, call.ctx.clock.now_ms())
    return JSONResponse({"url": call.ctx.sign_download(call.base_url, key)})


def _object_for(
    session: Session, user_id: int, item: dict[str, Any], best: bool, now_ms: int
) -> str:
    if "revision_id" in item:
        revision_id = get_int(item, "revision_id", where="items[0].")
        revision = session.get(Revision, revision_id)
        if revision is None:
            raise not_found(f"revision {revision_id}")
        _require_downloadable(session, user_id, revision.asset_id, now_ms)
        return revision.object_key

    asset_id = get_int(item, "asset_item_id", where="items[0].")
    asset = _require_downloadable(session, user_id, asset_id, now_ms)
    proxies = {p.type: p for p in _proxies_of(session, asset_id)}
    wanted = as_list(item.get("proxies", []), "items[0].proxies")
    if item.get("source") is True and not wanted:
        assert asset.object_key is not None
        return asset.object_key
    if len(wanted) == 1:
        proxy = proxies.get(wanted[0]) if isinstance(wanted[0], str) else None
        if proxy is None:
            raise invalid(
                f"proxy {wanted[0]!r} is not available for asset item {asset_id}"
            )
        return proxy.object_key
    if wanted:
        raise invalid("items[0]: ask for the source or one proxy per http download")
    if best:
        largest = max(proxies.values(), key=lambda p: p.size, default=None)
        assert asset.object_key is not None
        return largest.object_key if largest else asset.object_key
    raise ApiError(422, 'items[0]: set "source": true or name a proxy')


def routes() -> list[Route]:
    """The proxy and download routes."""
    return [
        api_route("POST", "/api/v2/asset_items/proxies", list_proxies),
        api_route(
            "POST", "/api/v2/asset_items/proxies/download/http", proxy_download_urls
        ),
        api_route("POST", "/api/v3/downloads", download),
    ]

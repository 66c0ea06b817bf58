"""POST /api/v1/asset_items/bulk_update: names, vocabulary fields, custom metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from syncagent.emulator.access import require_asset
from syncagent.emulator.db import Asset
from syncagent.emulator.metadata import merge_fields, parse_fields, parse_titles
from syncagent.emulator.serialize import asset_bulk_updated
from syncagent.emulator.validate import (
    as_list,
    as_object,
    check_filename,
    get_int,
    invalid,
)
from syncagent.emulator.views import build_views
from syncagent.emulator.vocabulary import (
    VOCABULARY_PARAMETERS,
    extension_of,
    subtypes_of,
    vocabulary_names,
)
from syncagent.emulator.web import Call, api_route, created

MAX_ITEMS = 500


async def bulk_update(call: Call) -> Response:
    """Update up to 500 asset items; all are checked before any is changed."""
    body = as_object(call.body)
    items = as_list(body.get("asset_items"), "asset_items")
    if not items or len(items) > MAX_ITEMS:
        raise invalid(f"asset_items must hold 1 to {MAX_ITEMS} items")
    shared_fields = (
        parse_fields(body["metadata"], "metadata") if "metadata" in body else None
    )
    changes = [_parse_item(raw, index) for index, raw in enumerate(items)]

    now = call.ctx.clock.now_ms()
    with call.ctx.sessions.begin() as session:
        assets = [_check(session, call.user_id, change) for change in changes]
        for asset, change in zip(assets, changes, strict=True):
            _apply(asset, change, shared_fields, now)
        session.flush()
        views = build_views(session, call.ctx, call.base_url, call.user_id, assets)
    return created({"bulk_update": [asset_bulk_updated(view) for view in views]})


def _parse_item(raw: Any, index: int) -> dict[str, Any]:
    where = f"asset_items[{index}]."
    item = as_object(raw, f"asset_items[{index}]")
    change: dict[str, Any] = {"id": get_int(item, "id", where=where), "where": where}
    if "name" in item:
        name = item["name"]
        if not isinstance(name, str) or not name.strip():
            raise invalid(f"{where}name must be a non-empty string")
        change["name"] = check_filename(name, f"{where}name")
    if "custom_metadata_fields" in item:
        change["fields"] = parse_fields(
            item["custom_metadata_fields"], f"{where}custom_metadata_fields"
        )
    titles = parse_titles(item, where)
    if titles is not None:
        change["titles"] = titles
    vocab = {}
    for parameter, (vocabulary, field) in VOCABULARY_PARAMETERS.items():
        if parameter in item:
            value = item[parameter]
            if not isinstance(value, str):
                raise invalid(f"{where}{parameter} must be a string")
            # Subtypes are checked against their type later, with the asset at hand.
            if field != "asset_subtype" and value not in vocabulary_names(vocabulary):
                raise invalid(f"{where}{parameter}: {value!r} is not in the vocabulary")
            vocab[field] = value
    change["vocab"] = vocab
    return change


def _check(session: Session, user_id: int, change: dict[str, Any]) -> Asset:
    asset = require_asset(session, user_id, change["id"], "upload")
    where = change["where"]
    new_name = change.get("name")
    if new_name is not None and extension_of(new_name) != extension_of(asset.name):
        raise invalid(
            f"{where}name: {new_name!r} must keep the extension of {asset.name!r}"
        )
    subtype = change["vocab"].get("asset_subtype")
    if subtype is not None:
        asset_type = change["vocab"].get(
            "asset_type", (asset.vocab or {}).get("asset_type")
        )
        if subtype not in subtypes_of(asset_type):
            raise invalid(
                f"{where}asset_subtype_name: {subtype!r} is not a subtype "
                f"of {asset_type!r}"
            )
    return asset


def _apply(
    asset: Asset,
    change: dict[str, Any],
    shared_fields: list[dict[str, Any]] | None,
    now: int,
) -> None:
    if "name" in change:
        asset.name = change["name"]
    fields = shared_fields if shared_fields is not None else change.get("fields")
    if fields is not None:
        asset.custom_fields = merge_fields(asset.custom_fields, fields)
    if "titles" in change:
        asset.titles = change["titles"]
    if change["vocab"]:
        asset.vocab = {**(asset.vocab or {}), **change["vocab"]}
    asset.updated_at = now


def routes() -> list[Route]:
    """The bulk update route."""
    return [api_route("POST", "/api/v1/asset_items/bulk_update", bulk_update)]

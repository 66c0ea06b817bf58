"""Gather, in a few queries, what the JSON of a list of assets needs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from syncagent.emulator.archive import NOT_ARCHIVED, archive_views
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.db import (
    PERMISSION_NAMES,
    AssetFolder,
    Folder,
    Proxy,
    core,
)
from syncagent.emulator.grants import grants_of
from syncagent.emulator.proxies import PROXY_CLASSES
from syncagent.emulator.serialize import AssetRecord, AssetView

_FOLDERS = (
    select(AssetFolder.asset_id, Folder.id, Folder.name)
    .join(Folder, Folder.id == AssetFolder.folder_id)
    .where(AssetFolder.asset_id.in_(bindparam("asset_ids", expanding=True)))
    .order_by(Folder.id)
)
_PROXIES = select(Proxy.asset_id, Proxy.type, Proxy.object_key).where(
    Proxy.asset_id.in_(bindparam("asset_ids", expanding=True))
)


def build_views(
    db: Session | Connection,
    ctx: EmulatorContext,
    base_url: str,
    user_id: int,
    assets: Sequence[AssetRecord],
) -> list[AssetView]:
    """Return one AssetView per asset, in the same order."""
    ids = [asset.id for asset in assets]
    folders = _folders_by_asset(db, ids)
    flags_by_folder = grants_of(db).of_user(db, user_id)
    # Proxies are stored, with proxy_state "done", only for the proxy classes.
    with_proxies = [
        asset.id
        for asset in assets
        if asset.proxy_state == "done" and asset.asset_class in PROXY_CLASSES
    ]
    proxies = _proxies_by_asset(db, with_proxies)
    archives = archive_views(db, ids, ctx.clock.now_ms())

    views = []
    for asset in assets:
        flags = dict.fromkeys(PERMISSION_NAMES, False)
        for folder_id, _name in folders[asset.id]:
            for name, value in flags_by_folder.get(folder_id, {}).items():
                flags[name] = flags[name] or value
        asset_proxies = proxies[asset.id]
        thumbnail_key = asset_proxies.get("small_thumbnail")
        views.append(
            AssetView(
                asset=asset,
                folders=folders[asset.id],
                flags=flags,
                thumbnail_url=(
                    ctx.sign_download(base_url, thumbnail_key)
                    if thumbnail_key
                    else None
                ),
                proxy_types=sorted(asset_proxies),
                archive=archives.get(asset.id, NOT_ARCHIVED),
            )
        )
    return views


def _folders_by_asset(
    db: Session | Connection, asset_ids: list[int]
) -> dict[int, list[tuple[int, str]]]:
    result: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for asset_id, folder_id, name in core(db).execute(
        _FOLDERS, {"asset_ids": asset_ids}
    ):
        result[asset_id].append((folder_id, name))
    return result


def _proxies_by_asset(
    db: Session | Connection, asset_ids: list[int]
) -> dict[int, dict[str, str]]:
    result: dict[int, dict[str, str]] = defaultdict(dict)
    if not asset_ids:
        return result
    for asset_id, proxy_type, key in core(db).execute(
        _PROXIES, {"asset_ids": asset_ids}
    ):
        result[asset_id][proxy_type] = key
    return result

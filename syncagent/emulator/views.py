"""Gather, in a few queries, what the JSON of a list of assets needs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.db import (
    PERMISSION_NAMES,
    Asset,
    AssetFolder,
    Folder,
    Permission,
    Proxy,
)
from syncagent.emulator.serialize import AssetView


def build_views(
    session: Session,
    ctx: EmulatorContext,
    base_url: str,
    user_id: int,
    assets: Sequence[Asset],
) -> list[AssetView]:
    """Return one AssetView per asset, in the same order."""
    ids = [asset.id for asset in assets]
    folders = _folders_by_asset(session, ids)
    all_folder_ids = {fid for pairs in folders.values() for fid, _name in pairs}
    flags_by_folder = _flags_by_folder(session, user_id, all_folder_ids)
    proxies = _proxies_by_asset(session, ids)

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
            )
        )
    return views


def _folders_by_asset(
    session: Session, asset_ids: list[int]
) -> dict[int, list[tuple[int, str]]]:
    query = (
        select(AssetFolder.asset_id, Folder.id, Folder.name)
        .join(Folder, Folder.id == AssetFolder.folder_id)
        .where(AssetFolder.asset_id.in_(asset_ids))
        .order_by(Folder.id)
    )
    result: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for asset_id, folder_id, name in session.execute(query):
        result[asset_id].append((folder_id, name))
    return result


def _flags_by_folder(
    session: Session, user_id: int, folder_ids: set[int]
) -> dict[int, dict[str, bool]]:
    query = select(Permission).where(
        Permission.user_id == user_id, Permission.folder_id.in_(folder_ids)
    )
    return {row.folder_id: row.flags() for row in session.scalars(query)}


def _proxies_by_asset(
    session: Session, asset_ids: list[int]
) -> dict[int, dict[str, str]]:
    query = select(Proxy.asset_id, Proxy.type, Proxy.object_key).where(
        Proxy.asset_id.in_(asset_ids)
    )
    result: dict[int, dict[str, str]] = defaultdict(dict)
    for asset_id, proxy_type, key in session.execute(query):
        result[asset_id][proxy_type] = key
    return result

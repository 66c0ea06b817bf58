"""Lookups shared by the routes: records by ID (404) and permission checks (403)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncagent.emulator.db import (
    PERMISSION_NAMES,
    Asset,
    AssetFolder,
    Folder,
    Permission,
)
from syncagent.emulator.web import ApiError, not_found


def load_folder(session: Session, folder_id: int) -> Folder:
    """Return the folder or raise the 404."""
    folder = session.get(Folder, folder_id)
    if folder is None:
        raise not_found(f"folder {folder_id}")
    return folder


def load_asset(session: Session, asset_id: int) -> Asset:
    """Return the asset item or raise the 404."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise not_found(f"asset item {asset_id}")
    return asset


def folder_name_taken(session: Session, name: str, parent_id: int | None) -> bool:
    """True when `parent_id` already holds a folder called `name`."""
    parent = (
        Folder.parent_id.is_(None)
        if parent_id is None
        else Folder.parent_id == parent_id
    )
    query = select(Folder.id).where(Folder.name == name, parent)
    return session.scalar(query.limit(1)) is not None


def folder_ids_of(session: Session, asset_id: int) -> list[int]:
    """Return the IDs of the folders holding an asset, ascending."""
    query = select(AssetFolder.folder_id).where(AssetFolder.asset_id == asset_id)
    return sorted(session.scalars(query))


def folder_flags(session: Session, user_id: int, folder_id: int) -> dict[str, bool]:
    """Return the user's permission flags on one folder (all false if none)."""
    row = session.get(Permission, (user_id, folder_id))
    if row is None:
        return dict.fromkeys(PERMISSION_NAMES, False)
    return row.flags()


def combined_flags(
    session: Session, user_id: int, folder_ids: Iterable[int]
) -> dict[str, bool]:
    """Return the union of the user's permissions over several folders."""
    flags = dict.fromkeys(PERMISSION_NAMES, False)
    ids = list(folder_ids)
    if not ids:
        return flags
    query = select(Permission).where(
        Permission.user_id == user_id, Permission.folder_id.in_(ids)
    )
    for row in session.scalars(query):
        for name, value in row.flags().items():
            flags[name] = flags[name] or value
    return flags


def require_folder(
    session: Session, user_id: int, folder_id: int, permission: str
) -> Folder:
    """Return the folder if the user holds `permission` on it (else 404/403)."""
    folder = load_folder(session, folder_id)
    if not folder_flags(session, user_id, folder_id)[permission]:
        raise ApiError(403, f"no {permission} permission on folder {folder_id}")
    return folder


def require_asset(
    session: Session, user_id: int, asset_id: int, permission: str
) -> Asset:
    """Return the asset if the user holds `permission` in one of its folders."""
    asset = load_asset(session, asset_id)
    flags = combined_flags(session, user_id, folder_ids_of(session, asset_id))
    if not flags[permission]:
        raise ApiError(403, f"no {permission} permission on asset item {asset_id}")
    return asset

"""Lookups shared by the routes: records by ID (404, or 410 for an asset deleted since)
and permission checks (403).

Permission flags come from the in-memory cache of grants.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from syncagent.emulator.db import Asset, AssetFolder, Folder, Record, core
from syncagent.emulator.grants import grants_of
from syncagent.emulator.web import ApiError, not_found

_ASSET_ROW = select(Asset.__table__).where(Asset.id == bindparam("asset_id"))
_ASSET_FOLDERS = (
    select(Asset.id, AssetFolder.folder_id)
    .outerjoin(AssetFolder, AssetFolder.asset_id == Asset.id)
    .where(Asset.id == bindparam("asset_id"))
)
# The highest asset ID ever given out: assets use AUTOINCREMENT, so an ID is never
# given out twice and a missing ID at or below it was deleted.
_HIGHEST_ASSET_ID = text("SELECT seq FROM sqlite_sequence WHERE name = 'assets'")


def load_folder(session: Session, folder_id: int) -> Folder:
    """Return the folder or raise the 404."""
    folder = session.get(Folder, folder_id)
    if folder is None:
        raise not_found(f"folder {folder_id}")
    return folder


def load_asset_record(db: Connection, asset_id: int) -> Record:
    """Return the asset item's row (all columns, as the ORM names them) or the 404."""
    asset = db.execute(_ASSET_ROW, {"asset_id": asset_id}).first()
    if asset is None:
        raise missing_asset(db, asset_id)
    return asset


def load_asset(session: Session, asset_id: int) -> Asset:
    """Return the asset item or raise the 404."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise missing_asset(session, asset_id)
    return asset


def missing_asset(db: Connection | Session, asset_id: int) -> ApiError:
    """The error for an asset ID with no asset: 410 Gone when the asset was
    deleted (the reference: "permanently removed"), 404 when it never existed."""
    highest = db.execute(_HIGHEST_ASSET_ID).scalar() or 0
    if 0 < asset_id <= highest:
        return ApiError(410, f"asset item {asset_id} has been permanently removed")
    return not_found(f"asset item {asset_id}")


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


def folder_flags(
    db: Session | Connection, user_id: int, folder_id: int
) -> dict[str, bool]:
    """Return the user's permission flags on one folder (all false if none)."""
    return grants_of(db).folder(db, user_id, folder_id)


def combined_flags(
    db: Session | Connection, user_id: int, folder_ids: Iterable[int]
) -> dict[str, bool]:
    """Return the union of the user's permissions over several folders."""
    return grants_of(db).combined(db, user_id, folder_ids)


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
    check_asset(session, user_id, asset_id, permission)
    return load_asset(session, asset_id)


def check_asset(
    db: Session | Connection, user_id: int, asset_id: int, permission: str
) -> None:
    """Raise the 404 (410) or 403 of require_asset without loading the asset."""
    rows = core(db).execute(_ASSET_FOLDERS, {"asset_id": asset_id}).all()
    if not rows:
        raise missing_asset(db, asset_id)
    folder_ids = [folder_id for _asset, folder_id in rows if folder_id is not None]
    require_flag(db, user_id, asset_id, folder_ids, permission)


def require_flag(
    db: Session | Connection,
    user_id: int,
    asset_id: int,
    folder_ids: Iterable[int],
    permission: str,
) -> None:
    """Raise the 403 unless the user holds `permission` in one of the folders
    that hold asset `asset_id`."""
    if not combined_flags(db, user_id, folder_ids)[permission]:
        raise ApiError(403, f"no {permission} permission on asset item {asset_id}")

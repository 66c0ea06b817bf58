"""Removing records and the stored objects only they referenced."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from syncagent.emulator.db import (
    ArchiveState,
    Asset,
    AssetFolder,
    Part,
    PendingIngest,
    Proxy,
    Revision,
    StoredObject,
    Upload,
)


def drop_proxies(session: Session | Connection, asset_id: int) -> list[str]:
    """Delete an asset's proxies; return the object keys whose files must go."""
    query = select(Proxy.object_key).where(Proxy.asset_id == asset_id)
    keys = list(session.scalars(query))
    if not keys:
        return []
    session.execute(delete(Proxy).where(Proxy.asset_id == asset_id))
    session.execute(delete(StoredObject).where(StoredObject.key.in_(keys)))
    return keys


def release_source(session: Session | Connection, key: str | None) -> list[str]:
    """Forget a former source object unless a revision still serves it."""
    if key is None:
        return []
    if session.scalar(select(Revision.id).where(Revision.object_key == key).limit(1)):
        return []
    session.execute(delete(StoredObject).where(StoredObject.key == key))
    return [key]


def delete_asset(session: Session, asset: Asset) -> tuple[list[str], list[str]]:
    """Delete an asset and everything it owns.

    Returns the object keys whose files must go and the part keys to discard.
    """
    asset_id = asset.id
    object_keys = drop_proxies(session, asset_id)
    revision_keys = list(
        session.scalars(
            select(Revision.object_key).where(Revision.asset_id == asset_id)
        )
    )
    object_keys += [key for key in {*revision_keys, asset.object_key} if key]
    pending = select(PendingIngest.object_key).where(PendingIngest.asset_id == asset_id)
    object_keys += list(session.scalars(pending))
    session.execute(delete(PendingIngest).where(PendingIngest.asset_id == asset_id))
    session.execute(delete(StoredObject).where(StoredObject.key.in_(object_keys)))
    session.execute(delete(Revision).where(Revision.asset_id == asset_id))

    uploads = list(session.scalars(select(Upload).where(Upload.asset_id == asset_id)))
    part_keys = [upload.key for upload in uploads if upload.key]
    session.execute(delete(Part).where(Part.upload_id.in_([u.id for u in uploads])))
    session.execute(delete(Upload).where(Upload.asset_id == asset_id))
    session.execute(delete(AssetFolder).where(AssetFolder.asset_id == asset_id))
    session.execute(delete(ArchiveState).where(ArchiveState.asset_id == asset_id))
    session.delete(asset)
    return object_keys, part_keys

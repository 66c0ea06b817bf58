"""Translate Compass JSON bodies into the client's dataclasses; extra fields pass."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from syncagent.compass.errors import TransientError
from syncagent.compass.models import (
    AssetItem,
    Folder,
    FolderListing,
    Permissions,
    Proxy,
    SearchPage,
)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp as Compass writes it (`...Z`); None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def permissions(data: Any) -> Permissions:
    """Read a permissions object; null means no permission at all."""
    if not isinstance(data, dict):
        return Permissions()
    return Permissions(
        upload=bool(data.get("upload")),
        view=bool(data.get("view")),
        download=bool(data.get("download")),
        asset_delete=bool(data.get("asset_delete")),
        folder_manage=bool(data.get("folder_manage")),
        folder_delete=bool(data.get("folder_delete")),
    )


def _name(value: Any) -> str:
    """A folder or asset name as the agent keeps it: a NUL character, which no file
    system takes in a name and PostgreSQL refuses in text, reads as U+FFFD."""
    return str(value).replace("\x00", "\ufffd")


def folder_listing(data: Any) -> FolderListing:
    """Read the answer of the subfolders call."""
    try:
        subfolders = [
            Folder(
                folder_id=int(item["id"]),
                name=_name(item["name"]),
                has_children=bool(item.get("has_children")),
                permissions=permissions(item.get("permissions")),
            )
            for item in data.get("folders") or []
        ]
        return FolderListing(
            folder_id=int(data["id"]),
            name=_name(data.get("name") or ""),
            permissions=permissions(data.get("permissions")),
            subfolders=subfolders,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TransientError(f"unreadable subfolder listing: {exc!r}") from exc


def asset_item(data: Any) -> AssetItem:
    """Read an asset item from a detail, batch, upload or search answer."""
    try:
        folder_ids = data.get("folder_ids")
        if folder_ids is None:
            folder_ids = [f["id"] for f in data.get("folders") or [] if "id" in f]
        name = data.get("name") or data.get("file_name") or ""
        return AssetItem(
            asset_id=int(data["id"]),
            name=_name(name),
            asset_class=data.get("asset_class"),
            status=data.get("status"),
            size=_int_or_none(data.get("size")),
            checksum=data.get("checksum") or None,
            folder_ids=tuple(int(f) for f in folder_ids),
            updated_at=parse_time(data.get("updated_at")),
            created_at=parse_time(data.get("created_at")),
            # Temporarily restored assets can be downloaded: not archived for us.
            archived=bool(data.get("archived")) and not data.get("restored"),
            restoring=bool(data.get("restoring")),
            has_proxy=data.get("has_proxy"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TransientError(f"unreadable asset item: {exc!r}") from exc


def asset_items(data: Any, key: str = "asset_items") -> list[AssetItem]:
    """Read the list of asset items under `key` of an answer."""
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise TransientError(f"answer has no {key!r} list")
    return [asset_item(item) for item in data[key]]


def search_page(data: Any) -> SearchPage:
    """Read one page of search results."""
    assets = asset_items(data)
    return SearchPage(
        assets=assets,
        matches=_int_or_none(data.get("matches")) or 0,
        last_page=bool(data.get("last_page", True)),
    )


def proxies(data: Any) -> dict[int, list[Proxy]]:
    """Read the proxy listing: asset ID to the proxies that exist for it."""
    result: dict[int, list[Proxy]] = {}
    for item in (data or {}).get("asset_items") or []:
        result[int(item["id"])] = [
            Proxy(
                type=str(p["type"]),
                size=_int_or_none(p.get("size")),
                width=_int_or_none(p.get("width")),
                height=_int_or_none(p.get("height")),
            )
            for p in item.get("proxies") or []
        ]
    return result

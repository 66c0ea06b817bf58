"""Typed results of Compass calls; no wire dict travels past the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Token:
    """A bearer token, the epoch second it expires at, and when to replace it."""

    access_token: str
    expires_at: float
    renew_at: float

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at})"


@dataclass(frozen=True)
class Permissions:
    """What the user may do in one folder (the reference's permissions object)."""

    upload: bool = False
    view: bool = False
    download: bool = False
    asset_delete: bool = False
    folder_manage: bool = False
    folder_delete: bool = False


@dataclass(frozen=True)
class Folder:
    """A Compass folder as listed by the subfolders call."""

    folder_id: int
    name: str
    has_children: bool
    permissions: Permissions


@dataclass(frozen=True)
class FolderListing:
    """A folder with its direct subfolders."""

    folder_id: int
    name: str
    permissions: Permissions
    subfolders: list[Folder]


@dataclass(frozen=True)
class NewAsset:
    """One asset item to create for an HTTP multipart upload."""

    name: str
    folder_ids: list[int]
    file_size: int
    custom_metadata_fields: list[dict[str, Any]] = field(default_factory=list)
    titles: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AssetItem:
    """An asset item; fields the answering call does not carry are None."""

    asset_id: int
    name: str
    asset_class: str | None = None
    status: str | None = None
    size: int | None = None
    checksum: str | None = None
    folder_ids: tuple[int, ...] = ()
    updated_at: datetime | None = None
    created_at: datetime | None = None
    archived: bool = False
    """Archived and not restored: its bytes cannot be downloaded now."""
    restoring: bool = False
    """A restore of it is under way (asked by anyone)."""
    has_proxy: bool | None = None


@dataclass(frozen=True)
class Proxy:
    """A proxy (thumbnail or rendition) that exists for an asset."""

    type: str
    size: int | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class SearchPage:
    """One page of search results."""

    assets: list[AssetItem]
    matches: int
    last_page: bool

"""The JSON shapes of asset items, following the reference's samples."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from syncagent.emulator.archive import NOT_ARCHIVED, ArchiveView
from syncagent.emulator.clock import iso_from_ms
from syncagent.emulator.db import Asset, Record

AssetRecord = Asset | Record
"""An asset as an ORM object or as a Core row of all its columns (same names)."""


@dataclass
class AssetView:
    """An asset with what its JSON needs beyond its own row."""

    asset: AssetRecord
    folders: list[tuple[int, str]] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    thumbnail_url: str | None = None
    proxy_types: list[str] = field(default_factory=list)
    archive: ArchiveView = NOT_ARCHIVED


def type_label(asset_class: str) -> str:
    """Return the display type of an asset class ('Video', 'PDF', ...)."""
    return "PDF" if asset_class == "pdf" else asset_class.capitalize()


def icon_status(asset: AssetRecord) -> str:
    """Return 'available' for complete assets, 'soulless' before the upload."""
    return "available" if asset.status == "complete" else "soulless"


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def custom_metadata_tree(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Nest custom metadata fields as {category: {label: value}}."""
    tree: dict[str, dict[str, Any]] = {}
    for item in fields:
        tree.setdefault(_snake(item["category"]), {})[_snake(item["label"])] = item[
            "value"
        ]
    return tree


def _title_name(gpms_id: int) -> str:
    return f"TITLE {gpms_id}"


def titles_detail(titles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return titles as the asset detail shows them."""
    return [
        {
            "gpms_id": title["gpms_id"],
            "id": title["gpms_id"],
            "gpms_id_and_name": f"{title['gpms_id']}|{_title_name(title['gpms_id'])}",
            "name": _title_name(title["gpms_id"]),
            "full_name": _title_name(title["gpms_id"]),
            "season_number": None,
            "title_level": "nonepisodic",
            "title_type": "feature",
        }
        for title in titles
    ]


def downloadable(view: AssetView) -> bool:
    """Whether the asset's file can be downloaded: uploaded, and not in archive."""
    return view.asset.status == "complete" and view.archive.downloadable


def actions(view: AssetView) -> dict[str, Any]:
    """Return the actions object from the user's permissions on the asset."""
    flags = view.flags
    can_download = flags.get("download", False) and downloadable(view)
    can_edit = flags.get("upload", False)
    return {
        "can_cancel": {},
        "can_copy": can_edit,
        "can_delete": flags.get("asset_delete", False),
        "can_edit": can_edit,
        "can_move": can_edit,
        "can_rename": can_edit,
        "can_restore": can_edit and view.archive.restorable,
        "can_replace": can_edit,
        "can_share": flags.get("share", False),
        "can_view": flags.get("view", False),
        "can_update_thumbnail": can_edit,
        "can_watermark": flags.get("watermark", False),
        "can_download_original": can_download,
        "can_download_proxy": can_download and bool(view.proxy_types),
        "can_download": can_download,
    }


def asset_detail(view: AssetView, *, skip_actions: bool = False) -> dict[str, Any]:
    """Return the shape of GET /api/v1/asset_items/:id."""
    asset = view.asset
    vocab = asset.vocab or {}
    titles = titles_detail(asset.titles)
    archive = view.archive.detail_fields()
    data: dict[str, Any] = {} if skip_actions else {"actions": actions(view)}
    data.update(
        {
            "archive_status": archive["archive_status"],
            "archived": archive["archived"],
            "asset_class": asset.asset_class,
            "asset_owner": vocab.get("asset_owner"),
            "asset_subtype": vocab.get("asset_subtype"),
            "asset_type": vocab.get("asset_type"),
            "asset_type_or_class": vocab.get("asset_type")
            or type_label(asset.asset_class),
            "checksum": asset.checksum,
            "created_at": iso_from_ms(asset.created_at),
            "custom_metadata": custom_metadata_tree(asset.custom_fields),
            "downloadable": downloadable(view),
            "file_name": asset.file_name,
            "folder_ids": [folder_id for folder_id, _name in view.folders],
            "has_proxy": bool(view.proxy_types),
            "icon_status": icon_status(asset),
            "id": asset.id,
            "is_audio": asset.asset_class == "audio",
            "is_video": asset.asset_class == "video",
            "linked_asset_group_id": None,
            "managed_by": vocab.get("managed_by"),
            "mcs_id": asset.mcs_id,
            "metadata_deprecated": None,
            "name": asset.name,
            "pixel_dimensions": None,
            "restorable": archive["restorable"],
            "restore_hours_remaining": archive["restore_hours_remaining"],
            "restore_status": archive["restore_status"],
            "restored": archive["restored"],
            "restoring": archive["restoring"],
            "root_title": titles[0]["name"] if titles else None,
            "scheduled_actions": [],
            "season": [],
            "series": [],
            "shareable": view.flags.get("share", False),
            "show_identifier": None,
            "size": asset.size,
            "status": asset.status,
            "thumbnail_url": view.thumbnail_url,
            "titles": titles,
            "uploaded_at": iso_from_ms(asset.uploaded_at),
            "uploaded_by": asset.uploaded_by,
            "usage_classification": vocab.get("usage_classification", "Internal Use"),
            "usage_restriction": vocab.get("usage_restriction"),
            "usage_status": vocab.get("usage_status"),
            "width": None,
            "updated_at": iso_from_ms(asset.updated_at),
        }
    )
    return data


def asset_listing(view: AssetView) -> dict[str, Any]:
    """Return the shape of an item in search results (with its folders)."""
    asset = view.asset
    titles = titles_detail(asset.titles)
    names = [title["name"] for title in titles]
    playable = {"video_sd", "video_mobile", "standard_audio"} & set(view.proxy_types)
    archive = view.archive.detail_fields()
    return {
        "actions": actions(view),
        "airdate": None,
        "alpha_name": None,
        "alpha_names": [],
        "asset_class": asset.asset_class,
        "episode_number": None,
        "file_name": asset.file_name,
        "folders": [{"id": fid, "name": name} for fid, name in view.folders],
        "gpms_id": titles[0]["gpms_id"] if titles else None,
        "has_playable_proxy": bool(playable),
        "height": None,
        "icon_status": icon_status(asset),
        "id": asset.id,
        "is_folder": False,
        "name": asset.name,
        "restore_hours_remaining": archive["restore_hours_remaining"],
        "restoring": archive["restoring"],
        "root_title": names[0] if names else None,
        "season": None,
        "show_number": None,
        "size": asset.size,
        "subtype": (asset.vocab or {}).get("asset_subtype"),
        "tape_date": None,
        "thumbnail_url": view.thumbnail_url,
        "title_name": names[0] if names else None,
        "title_names": names,
        "type": type_label(asset.asset_class),
        "uploaded_at": iso_from_ms(asset.uploaded_at),
        "usage_classification": (asset.vocab or {}).get(
            "usage_classification", "Internal Use"
        ),
        "usage_restriction": None,
        "width": None,
        "scheduled_actions": [],
        "linked_asset_groups": [],
    }


def asset_replacement(view: AssetView) -> dict[str, Any]:
    """Return the asset item of a revision or replace response."""
    data = asset_listing(view)
    data.pop("usage_classification")
    data.update({"actions": None, "icon_status": "replacement"})
    return data


def asset_created(view: AssetView) -> dict[str, Any]:
    """Return the asset item of an upload response (before any bytes)."""
    asset = view.asset
    titles = titles_detail(asset.titles)
    return {
        "actions": {"deletable": False, "downloadable": False},
        "airdate": None,
        "asset_class": asset.asset_class,
        "episode_number": None,
        "gpms_id": titles[0]["gpms_id"] if titles else None,
        "grid_display_name": None,
        "has_proxy": None,
        "icon_status": icon_status(asset),
        "id": asset.id,
        "is_folder": False,
        "name": asset.name,
        "root_title": titles[0]["name"] if titles else None,
        "season": None,
        "show_number": None,
        "size": None,
        "tape_date": None,
        "thumbnail_url": None,
        "type": asset.asset_class,
        "updated_at": iso_from_ms(asset.updated_at),
    }


def asset_bulk_updated(view: AssetView) -> dict[str, Any]:
    """Return the item shape of a bulk_update response."""
    asset = view.asset
    vocab = asset.vocab or {}
    return {
        "asset_owner": vocab.get("asset_owner"),
        "asset_subtype": vocab.get("asset_subtype"),
        "asset_type": vocab.get("asset_type"),
        "checksum": asset.checksum,
        "custom_metadata_fields": [
            {**item, "data_type": None} for item in reversed(asset.custom_fields)
        ],
        "file_size": asset.size,
        "has_proxy": bool(view.proxy_types) or None,
        "id": asset.id,
        "managed_by": vocab.get("managed_by"),
        "name": asset.name,
        "naming_convention": None,
        "original_file_name": asset.file_name,
        "titles": [
            {"gpms_id": t["gpms_id"], "name": t["name"], "full_name": t["full_name"]}
            for t in titles_detail(asset.titles)
        ],
        "usage_classification": vocab.get("usage_classification", "Internal Use"),
        "usage_status": vocab.get("usage_status"),
    }

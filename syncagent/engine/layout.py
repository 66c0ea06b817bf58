"""Where a mirror keeps what is not a synced file: proxies, trash, conflict copies.

    <root>/.proxies/<path of the asset>/<proxy type>.<ext>
    <root>/.syncagent-trash/<path of the file when Compass removed it>
    <root>/<dir>/<name> (conflict <UTC date> asset <id>).<ext>

All three are kept out of uploads: the first two by the reserved-name excludes, conflict
copies by the exclude every two-way mapping gets (`config.CONFLICT_COPY_EXCLUDE`).
"""

from __future__ import annotations

from datetime import datetime

from syncagent.engine.names import PROXY_DIR, TRASH_DIR, tagged

PROXY_TYPES = frozenset(
    {
        "large_thumbnail",
        "medium_thumbnail",
        "small_thumbnail",
        "standard_thumbnail",
        "video_hd_1080_plus",
        "video_hd_1080",
        "video_hd_720",
        "video_sd_plus",
        "video_sd",
        "video_mobile",
        "standard_audio",
        "video_hd_720_tc",
        "video_sd_tc",
    }
)
"""The proxy types Compass makes: the reference's table, and the standard
thumbnail its asset items list."""

# The extension each proxy type is written with (the reference's proxy types table).
_PROXY_EXTENSIONS = {
    "large_thumbnail": ".jpg",
    "medium_thumbnail": ".jpg",
    "small_thumbnail": ".jpg",
    "standard_thumbnail": ".jpg",
    "standard_audio": ".mp3",
}


def proxy_extension(proxy_type: str) -> str:
    """The file extension of a proxy type: `.jpg`, `.mp4`, `.mp3` or none."""
    if proxy_type in _PROXY_EXTENSIONS:
        return _PROXY_EXTENSIONS[proxy_type]
    if proxy_type.startswith("video_"):
        return ".mp4"
    return ".jpg" if proxy_type.endswith("_thumbnail") else ""


def proxy_rel_path(asset_rel_path: str, proxy_type: str) -> str:
    """Where one proxy of the asset mirrored at `asset_rel_path` lives."""
    return f"{PROXY_DIR}/{asset_rel_path}/{proxy_type}{proxy_extension(proxy_type)}"


def trash_rel_path(rel_path: str) -> str:
    """Where a file removed in Compass is moved to (before any renaming for room)."""
    return f"{TRASH_DIR}/{rel_path}"


def trash_tag(when: datetime, asset_id: int | None) -> str:
    """The tag that sets apart a trashed file whose trash path is taken."""
    asset = f" asset {asset_id}" if asset_id is not None else ""
    return f"removed {when:%Y-%m-%d}{asset}"


def conflict_name(name: str, when: datetime, asset_id: int, number: int = 1) -> str:
    """`photo.jpg` → `photo (conflict 2026-12-04 asset 42).jpg` (then ` 2`, ...)."""
    tag = f"conflict {when:%Y-%m-%d} asset {asset_id}"
    if number > 1:
        tag = f"{tag} {number}"
    return tagged(name, tag)

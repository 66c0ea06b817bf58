"""Fixed reference data: the vocabularies and the asset class of each extension."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

_CLASS_EXTENSIONS = {
    "video": "mov mp4 m4v mxf avi mkv mpg mpeg webm wmv mts m2ts 3gp flv ts vob",
    "audio": "wav mp3 aac aif aiff flac m4a ogg wma opus bwf",
    "image": "jpg jpeg png gif tif tiff bmp webp psd heic heif dng cr2 nef exr dpx",
    "pdf": "pdf",
    "document": "doc docx txt rtf xls xlsx ppt pptx csv md odt ods odp pages key",
    "archive": "zip tar gz tgz 7z rar bz2 xz",
}
_CLASS_OF = {
    ext: asset_class
    for asset_class, names in _CLASS_EXTENSIONS.items()
    for ext in names.split()
}


def extension_of(name: str) -> str:
    """Return the lower-case extension of a file name without the dot ('' if none)."""
    return PurePosixPath(name).suffix.lower().lstrip(".")


def asset_class_for(name: str) -> str:
    """Return the asset class Compass derives from a file name's extension."""
    return _CLASS_OF.get(extension_of(name), "binary")


def _names(*values: str) -> list[dict[str, Any]]:
    return [{"name": value} for value in values]


def _type(name: str, *subtypes: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if subtypes:
        entry["subtypes"] = _names(*subtypes)
    return entry


VOCABULARIES: dict[str, list[dict[str, Any]]] = {
    "asset_owner": _names(
        "SPT Networks - Original Programming - LatAm", "Digital Media Group"
    ),
    "asset_type": [
        _type("Wild Posting"),
        _type("Recap", "Season", "Episode", "Series"),
        _type("Rating"),
        _type(
            "Reel",
            "Sizzle",
            "Promotional",
            "Executive Producer",
            "Clip",
            "Sales",
            "Campaign",
            "Exhibitors",
            "Gag",
            "Blooper",
            "Compilation",
        ),
        _type("Radio Spot"),
        _type("Rendering"),
        _type("Research Book"),
        _type("Questions"),
        _type("Quad"),
        _type("QC Report"),
        _type("Packshot", "Advertising"),
        _type("Trailer", "Theatrical", "Teaser"),
        _type("Photo", "Headshot", "Unit"),
        _type("Building Document"),
    ],
    "language_audio": _names("Slovak", "Punjabi", "English"),
    "language_text": _names("Dutch (Belgium)", "Dutch (Flemish)", "English"),
    "managed_by": _names("MPG Production \u2013 China", "Digital Media Group"),
    "mpaa_band": _names("Yellow", "Green", "Red"),
    "plan_type": _names("Construction Plan"),
    "source_media": _names("35mm OCN (Original Camera Negative)"),
    "spe_territory": _names("Venezuela", "Moscow", "Russia", "Los Angeles"),
    "sphe_created_for": _names("Shopper", "Digital", "Publicity"),
    "spt_spoiler": _names("No", "Yes"),
    "spt_ww_networks_brand": _names("AXN Mystery", "Crackle"),
    "territory": _names("Qatar", "Senegal", "Canada", "U.S."),
    "usage_classification": _names("Confidential", "Internal Use", "Public"),
    "usage_status": _names("Work in Progress", "Final", "Archive"),
    "video_content": _names("Without Slate"),
}

# Request parameter of bulk_update -> (vocabulary, asset field).
VOCABULARY_PARAMETERS = {
    "asset_owner_name": ("asset_owner", "asset_owner"),
    "asset_type_name": ("asset_type", "asset_type"),
    "asset_subtype_name": ("asset_type", "asset_subtype"),
    "managed_by_name": ("managed_by", "managed_by"),
    "usage_classification_name": ("usage_classification", "usage_classification"),
    "usage_status_name": ("usage_status", "usage_status"),
}


def vocabulary_names(vocabulary: str) -> set[str]:
    """Return the valid values of a top-level vocabulary."""
    return {entry["name"] for entry in VOCABULARIES.get(vocabulary, [])}


def subtypes_of(asset_type: str | None) -> set[str]:
    """Return the valid subtypes of an asset type (empty if it has none)."""
    for entry in VOCABULARIES["asset_type"]:
        if entry["name"] == asset_type:
            return {sub["name"] for sub in entry.get("subtypes", [])}
    return set()

"""Custom metadata fields and titles given in upload and bulk_update requests."""

from __future__ import annotations

from typing import Any

from syncagent.emulator.validate import as_list, as_object, invalid, is_int


def parse_fields(value: Any, where: str) -> list[dict[str, Any]]:
    """Return custom metadata fields as [{category, label, value}, ...]."""
    fields = []
    for index, raw in enumerate(as_list(value, where)):
        item = as_object(raw, f"{where}[{index}]")
        category, label = item.get("category"), item.get("label")
        if not isinstance(category, str) or not isinstance(label, str):
            raise invalid(f"{where}[{index}] needs string category and label")
        if "value" not in item:
            raise invalid(f"{where}[{index}].value is required")
        fields.append({"category": category, "label": label, "value": item["value"]})
    return fields


def merge_fields(
    existing: list[dict[str, Any]], updates: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Set each (category, label) of `updates` on `existing`; return the new list."""
    merged = [dict(item) for item in existing]
    next_id = max((item["id"] for item in merged), default=0) + 1
    for update in updates:
        match = next(
            (
                item
                for item in merged
                if (item["category"], item["label"])
                == (update["category"], update["label"])
            ),
            None,
        )
        if match is not None:
            match["value"] = update["value"]
        else:
            merged.append({"id": next_id, **update})
            next_id += 1
    return merged


def parse_titles(item: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    """Return the titles named by `titles` and `gpms_ids` (None if neither given)."""
    if "titles" not in item and "gpms_ids" not in item:
        return None
    titles: list[dict[str, Any]] = []
    for index, raw in enumerate(as_list(item.get("titles", []), f"{where}titles")):
        title = as_object(raw, f"{where}titles[{index}]")
        if not is_int(title.get("gpms_id")):
            raise invalid(f"{where}titles[{index}].gpms_id must be an integer")
        entry = {"gpms_id": title["gpms_id"]}
        for key in ("alpha_id", "gpms_alpha_id"):
            if key in title:
                if not is_int(title[key]):
                    raise invalid(f"{where}titles[{index}].{key} must be an integer")
                entry[key] = title[key]
        titles.append(entry)
    for gpms_id in as_list(item.get("gpms_ids", []), f"{where}gpms_ids"):
        if not is_int(gpms_id):
            raise invalid(f"{where}gpms_ids must be an array of integers")
        if all(t["gpms_id"] != gpms_id for t in titles):
            titles.append({"gpms_id": gpms_id})
    return titles

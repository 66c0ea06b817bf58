"""Checks of request parameters; every failure is a 422 naming the parameter."""

from __future__ import annotations

from typing import Any

from syncagent.emulator.web import ApiError


def invalid(message: str) -> ApiError:
    """Return the 422 for an invalid parameter."""
    return ApiError(422, message)


def as_object(value: Any, where: str = "request body") -> dict[str, Any]:
    """Return `value` if it is a JSON object."""
    if not isinstance(value, dict):
        raise invalid(f"{where} must be a JSON object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """Return `value` if it is a JSON array."""
    if not isinstance(value, list):
        raise invalid(f"{where} must be an array")
    return value


def is_int(value: Any) -> bool:
    """True for a JSON integer (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def get_int(
    obj: dict[str, Any], key: str, *, minimum: int | None = None, where: str = ""
) -> int:
    """Return the required integer `obj[key]`, at least `minimum`."""
    label = f"{where}{key}"
    value = obj.get(key)
    if value is None:
        raise invalid(f"{label} is required")
    if not is_int(value):
        raise invalid(f"{label} must be an integer")
    if minimum is not None and value < minimum:
        raise invalid(f"{label} must be at least {minimum}")
    return int(value)


def get_str(obj: dict[str, Any], key: str, *, where: str = "") -> str:
    """Return the required non-empty string `obj[key]`."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{where}{key} is required and must be a non-empty string")
    return value


def get_int_list(
    obj: dict[str, Any], key: str, *, required: bool = True, where: str = ""
) -> list[int]:
    """Return `obj[key]` as a list of integers (empty when optional and absent)."""
    label = f"{where}{key}"
    value = obj.get(key)
    if value is None and not required:
        return []
    items = as_list(value, label)
    if not all(is_int(item) for item in items):
        raise invalid(f"{label} must be an array of integers")
    return [int(item) for item in items]


def check_filename(name: str, where: str) -> str:
    """Return `name` if it is a usable file name (no path separators)."""
    if "/" in name or "\\" in name or name in (".", ".."):
        raise invalid(f"{where} must be a file name without a path: {name!r}")
    return name

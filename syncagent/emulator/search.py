"""The search query language: keywords and key:value terms turned into SQL.

Supported: `*`; words and "exact phrases" (matched in the name); `-term` to
exclude; `A OR B`; and the fields id, folder_id, name, asset_class,
file_extension, size, created_at, updated_at and uploaded_at, with a value, a
list `[a, b]` or a comparison `>x`, `>=x`, `<x`, `<=x`. The `filters` parameter
takes the same terms separated by commas. Anything else is a 422.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, select, true

from syncagent.emulator.clock import ms_from_iso
from syncagent.emulator.db import Asset, AssetFolder
from syncagent.emulator.validate import invalid

_TERM = re.compile(
    r'(?P<neg>-)?(?:(?P<key>[A-Za-z_][\w.]*):)?(?P<value>"[^"]*"|\[[^\]]*\]|[^\s"]+)'
)
_COMPARISON = re.compile(r"^(>=|<=|>|<)(.+)$")

Condition = ColumnElement[bool]


def parse_query(query: str) -> Condition:
    """Turn the `query` parameter into a SQL condition on Asset."""
    groups: list[list[Condition]] = [[]]
    position = 0
    text = query.strip()
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        match = _TERM.match(text, position)
        if match is None:
            raise invalid(f"query: cannot read {text[position:]!r}")
        position = match.end()
        if match.group(0) == "OR":
            groups.append([])
            continue
        groups[-1].append(_term(match))
    return or_(*(and_(true(), *group) for group in groups))


def parse_filters(filters: str) -> Condition:
    """Turn the comma-separated `filters` parameter into a SQL condition."""
    conditions = [
        parse_query(part) for part in _split_outside_brackets(filters) if part.strip()
    ]
    return and_(true(), *conditions)


def _split_outside_brackets(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "[" and not quoted:
            depth += 1
        elif char == "]" and not quoted:
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _term(match: re.Match[str]) -> Condition:
    key, value = match.group("key"), match.group("value")
    if key is None:
        condition = _keyword(value)
    else:
        builder = _FIELDS.get(key.lower())
        if builder is None:
            raise invalid(f"query: searching by {key!r} is not supported")
        condition = builder(value)
    return not_(condition) if match.group("neg") else condition


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _keyword(value: str) -> Condition:
    if value == "*":
        return true()
    pattern = f"%{_like_escape(_unquote(value))}%"
    return Asset.name.ilike(pattern, escape="\\")


def _list_items(value: str) -> list[str]:
    if value.startswith("[") and value.endswith("]"):
        return [
            _unquote(item.strip()) for item in value[1:-1].split(",") if item.strip()
        ]
    return [_unquote(value)]


def _ints(value: str, field: str) -> list[int]:
    try:
        return [int(item) for item in _list_items(value)]
    except ValueError:
        raise invalid(f"query: {field} takes integers, got {value!r}") from None


def _id_term(value: str) -> Condition:
    return Asset.id.in_(_ints(value, "id"))


def _folder_term(value: str) -> Condition:
    members = select(AssetFolder.asset_id).where(
        AssetFolder.folder_id.in_(_ints(value, "folder_id"))
    )
    return Asset.id.in_(members)


def _name_term(value: str) -> Condition:
    names = _list_items(value)
    conditions: list[Condition] = []
    for name in names:
        if "*" in name:
            pattern = _like_escape(name).replace("*", "%")
            conditions.append(Asset.name.like(pattern, escape="\\"))
        else:
            conditions.append(Asset.name == name)
    return or_(false(), *conditions)


def _class_term(value: str) -> Condition:
    return Asset.asset_class.in_([item.lower() for item in _list_items(value)])


def _extension_term(value: str) -> Condition:
    conditions = [
        Asset.name.ilike(f"%.{_like_escape(ext.lstrip('.'))}", escape="\\")
        for ext in _list_items(value)
    ]
    return or_(false(), *conditions)


def _compare(
    column: Any, parse: Callable[[str], int], field: str
) -> Callable[[str], Condition]:
    def build(value: str) -> Condition:
        text = _unquote(value)
        match = _COMPARISON.match(text)
        operator, operand = match.groups() if match else ("=", text)
        try:
            number = parse(_unquote(operand))
        except ValueError:
            raise invalid(f"query: cannot read {field} value {operand!r}") from None
        return {
            ">": column > number,
            ">=": column >= number,
            "<": column < number,
            "<=": column <= number,
            "=": column == number,
        }[operator]

    return build


_FIELDS: dict[str, Callable[[str], Condition]] = {
    "id": _id_term,
    "folder_id": _folder_term,
    "name": _name_term,
    "asset_class": _class_term,
    "file_extension": _extension_term,
    "size": _compare(Asset.size, int, "size"),
    "created_at": _compare(Asset.created_at, ms_from_iso, "created_at"),
    "updated_at": _compare(Asset.updated_at, ms_from_iso, "updated_at"),
    "uploaded_at": _compare(Asset.uploaded_at, ms_from_iso, "uploaded_at"),
}

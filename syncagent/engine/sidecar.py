"""Drop box sidecars: find and read `<file>.json` safely, and check what it says.

A sidecar is read without following links and is never opened unless it is a regular
file: a link, a pipe, a device or a socket at the sidecar's name fails its file (the
metadata it was meant to carry cannot be had), as does a sidecar that cannot be read,
is too large, is not JSON, or does not hold valid `custom_metadata_fields` and
`titles` (vocabulary fields checked against Compass's vocabularies).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from syncagent.engine.hooks import AssetDescription
from syncagent.engine.problems import FileProblem
from syncagent.engine.safe_root import Dir

SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 1024 * 1024
# A sidecar that is not valid JSON yet and changed this recently may still be being
# written: its file fails for now and is tried again, rather than failing for good.
FRESH_SECONDS = 60.0
_SIDECAR_KEYS = {"custom_metadata_fields", "titles"}
_FIELD_KEYS = {"category", "label", "value"}
_TITLE_KEYS = {"gpms_id", "alpha_id", "gpms_alpha_id"}


def sidecar_of(rel_path: str) -> str:
    """The relative path (or name) of a file's sidecar."""
    return rel_path + SIDECAR_SUFFIX


def may_be_sidecar(rel_path: str) -> bool:
    """Whether the name is `<file>.json`: a sidecar once `<file>` is beside it."""
    name = rel_path.rpartition("/")[2]
    return name.endswith(SIDECAR_SUFFIX) and name != SIDECAR_SUFFIX


def is_sidecar(root: Path, rel_path: str) -> bool:
    """Whether `rel_path` is the sidecar of a regular file beside it (which makes it
    travel with that file rather than go up on its own)."""
    if not may_be_sidecar(rel_path):
        return False
    try:
        st = os.lstat(root / rel_path[: -len(SIDECAR_SUFFIX)])
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def read_sidecar(directory: Dir, name: str) -> tuple[bytes, float] | None:
    """The content and mtime of the sidecar `name` in `directory`; None if there is
    none (nothing of that name, a folder of that name, or a name too long to exist).

    FileProblem (permanent) when something is there that cannot be read as one.
    """
    sidecar = directory.rel(name)
    st = directory.lstat(name)
    if st is None or stat.S_ISDIR(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        raise FileProblem(
            f"sidecar {sidecar}: a symbolic link; links are never followed",
            permanent=True,
        )
    if not stat.S_ISREG(st.st_mode):
        raise _not_a_file(sidecar)
    try:
        # Non-blocking: a pipe swapped in since the look must not hang the pass.
        fd = directory.open_file(name, os.O_RDONLY | os.O_NONBLOCK)
    except FileProblem as exc:
        raise FileProblem(f"sidecar {sidecar}: {exc.reason}", permanent=True) from None
    except OSError as exc:
        raise _unreadable(sidecar, exc) from exc
    with os.fdopen(fd, "rb") as stream:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise _not_a_file(sidecar)
        try:
            data = stream.read(MAX_SIDECAR_BYTES + 1)
        except OSError as exc:
            raise _unreadable(sidecar, exc) from exc
    if len(data) > MAX_SIDECAR_BYTES:
        raise FileProblem(
            f"sidecar {sidecar}: larger than {MAX_SIDECAR_BYTES} bytes",
            permanent=True,
        )
    return data, opened.st_mtime


def _not_a_file(sidecar: str) -> FileProblem:
    return FileProblem(
        f"sidecar {sidecar}: not a regular file (a pipe, device or socket); "
        "never opened",
        permanent=True,
    )


def _unreadable(sidecar: str, exc: OSError) -> FileProblem:
    return FileProblem(
        f"sidecar {sidecar}: cannot read it: {exc.strerror or exc}", permanent=True
    )


def parse_sidecar(data: bytes, sidecar: str, *, fresh: bool) -> Any:
    """The sidecar's JSON; FileProblem if it is not JSON, permanent unless `fresh`
    (changed moments ago, so perhaps still being written)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        what = (
            "not valid JSON" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        )
        reason = f"sidecar {sidecar}: {what}: {exc}"
        if fresh:
            reason += "; it changed moments ago, so it is tried again"
        raise FileProblem(reason, permanent=not fresh) from None


def vocabulary_values(raw: dict[str, Any]) -> dict[str, set[str]]:
    """Each vocabulary's allowed names, from the answer of the vocabularies call."""
    values: dict[str, set[str]] = {}
    for name, entries in raw.items():
        allowed: set[str] = set()
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                allowed.add(entry["name"])
        values[name] = allowed
    return values


def vocabulary_key(label: str) -> str:
    """The vocabulary a custom metadata label is bound to: 'MPAA Band' -> mpaa_band."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def check_sidecar(raw: Any, vocabularies: dict[str, set[str]]) -> AssetDescription:
    """A sidecar's JSON as an asset description; ValueError says what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object with custom_metadata_fields, titles")
    unknown = sorted(set(raw) - _SIDECAR_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r}; a sidecar holds custom_metadata_fields "
            "and titles"
        )
    fields = _list_of_objects(raw, "custom_metadata_fields")
    titles = _list_of_objects(raw, "titles")
    return AssetDescription(
        custom_metadata_fields=[
            _check_field(field, index, vocabularies)
            for index, field in enumerate(fields)
        ],
        titles=[_check_title(title, index) for index, title in enumerate(titles)],
    )


def _list_of_objects(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{key} must be a list of objects")
    return value


def _check_field(
    field: dict[str, Any], index: int, vocabularies: dict[str, set[str]]
) -> dict[str, Any]:
    where = f"custom_metadata_fields[{index}]"
    unknown = sorted(set(field) - _FIELD_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    category, label = field.get("category"), field.get("label")
    if not isinstance(category, str) or not category.strip():
        raise ValueError(f"{where}: category must be a non-empty string")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}: label must be a non-empty string")
    if "value" not in field:
        raise ValueError(f"{where} ({category} / {label}): value is missing")
    value = field["value"]
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise ValueError(
            f"{where} ({category} / {label}): value must be a string or a list of "
            "strings"
        )
    vocabulary = vocabulary_key(label)
    allowed = vocabularies.get(vocabulary)
    if allowed is not None:
        for item in items:
            if item not in allowed:
                raise ValueError(
                    f"{where} ({category} / {label}): {item!r} is not in the "
                    f"vocabulary {vocabulary} (allowed: {', '.join(sorted(allowed))})"
                )
    return {"category": category, "label": label, "value": value}


def _check_title(title: dict[str, Any], index: int) -> dict[str, Any]:
    where = f"titles[{index}]"
    unknown = sorted(set(title) - _TITLE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    for key, value in title.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}.{key} must be an integer")
    if "gpms_id" not in title:
        raise ValueError(f"{where}: gpms_id is missing")
    return dict(title)

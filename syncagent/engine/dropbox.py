"""Drop box mode: sidecar metadata at ingest, then `after_ingest` keep, delete or move.

A file `<name>` dropped with a sidecar `<name>.json` beside it gets the sidecar's
`custom_metadata_fields` and `titles`, checked against the vocabularies first; a bad
sidecar fails that file alone. With `after_ingest = "move"`, a verified file moves to
`done/` and a file that failed for good moves to `failed/` with `<name>.error.txt`;
with "delete" a verified file is deleted. The sidecar follows its file. `done/` and
`failed/` are never ingested.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat as stat_module
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncagent.compass import CompassClient, CompassError
from syncagent.config import MappingConfig
from syncagent.engine.hooks import AssetDescription, PassHooks
from syncagent.engine.problems import FileProblem
from syncagent.engine.scanner import LocalFile
from syncagent.ledger import Ledger

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"
SIDECAR_SUFFIX = ".json"
ERROR_SUFFIX = ".error.txt"
MAX_SIDECAR_BYTES = 1024 * 1024
_SIDECAR_KEYS = {"custom_metadata_fields", "titles"}
_FIELD_KEYS = {"category", "label", "value"}
_TITLE_KEYS = {"gpms_id", "alpha_id", "gpms_alpha_id"}

Defer = Callable[[LocalFile], bool]
HooksFor = Callable[[MappingConfig, int], PassHooks]


def ingest_mapping(mapping: MappingConfig) -> MappingConfig:
    """The mapping as a pass scans it: a drop box's done/ and failed/ are left out."""
    if mapping.mode != "dropbox":
        return mapping
    return replace(mapping, exclude=(*mapping.exclude, f"/{DONE}", f"/{FAILED}"))


def sidecar_of(rel_path: str) -> str:
    """The relative path of a file's sidecar."""
    return rel_path + SIDECAR_SUFFIX


def is_sidecar(root: Path, rel_path: str) -> bool:
    """Whether `rel_path` is the sidecar of a file beside it (not ingested)."""
    if not rel_path.endswith(SIDECAR_SUFFIX) or rel_path == SIDECAR_SUFFIX:
        return False
    return _is_regular(root / rel_path[: -len(SIDECAR_SUFFIX)])


def _is_regular(path: Path) -> bool:
    try:
        return stat_module.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class FailedDrop:
    """A file in a drop box's failed/ folder and the reason written beside it."""

    rel_path: str
    reason: str
    failed_at: datetime


def failed_drops(root: Path) -> list[FailedDrop]:
    """What lies in `root/failed/`, with each file's reason, oldest first."""
    found = []
    base = root / FAILED
    for directory, _, names in os.walk(base):
        for name in names:
            if name.endswith((ERROR_SUFFIX, SIDECAR_SUFFIX)):
                continue
            path = Path(directory) / name
            note = Path(str(path) + ERROR_SUFFIX)
            try:
                reason = note.read_text("utf-8").splitlines()[0]
                failed_at = datetime.fromtimestamp(note.stat().st_mtime, UTC)
            except (OSError, UnicodeDecodeError, IndexError):
                reason, failed_at = "no reason recorded", datetime.now(UTC)
            rel_path = path.relative_to(root).as_posix()
            found.append(FailedDrop(rel_path, reason, failed_at))
    return sorted(found, key=lambda drop: (drop.failed_at, drop.rel_path))


def mode_hooks(client: CompassClient, ledger: Ledger, *, dry_run: bool) -> HooksFor:
    """Hooks by mapping mode: drop box hooks (recovered first) or the default ones."""

    def hooks_for(mapping: MappingConfig, mapping_id: int) -> PassHooks:
        if mapping.mode != "dropbox":
            return PassHooks()
        hooks = DropBoxHooks(mapping, mapping_id, client, ledger)
        if not dry_run:
            hooks.recover()
        return hooks

    return hooks_for


def pass_defer(hooks: PassHooks, defer: Defer | None) -> Defer | None:
    """What a pass leaves alone: a drop box's sidecars, and what `defer` says."""
    if not isinstance(hooks, DropBoxHooks):
        return defer
    if defer is None:
        return hooks.holds
    outer = defer
    return lambda local: hooks.holds(local) or outer(local)


class DropBoxHooks(PassHooks):
    """Sidecars at ingest and `after_ingest` afterwards, for one drop box mapping."""

    def __init__(
        self,
        mapping: MappingConfig,
        mapping_id: int,
        client: CompassClient,
        ledger: Ledger,
    ) -> None:
        self.mapping = mapping
        self.root = mapping.local_root
        self.mapping_id = mapping_id
        self.client = client
        self.ledger = ledger
        self._vocabularies: dict[str, set[str]] | None = None
        self._vocabulary_lock = threading.Lock()
        self._move_lock = threading.Lock()

    def holds(self, local: LocalFile) -> bool:
        """Sidecars travel with their file and are never ingested on their own."""
        return is_sidecar(self.root, local.rel_path)

    # -- at ingest --------------------------------------------------------------

    def describe(self, rel_path: str) -> AssetDescription:
        """The sidecar's metadata, checked; FileProblem (permanent) if it is bad."""
        sidecar = sidecar_of(rel_path)
        raw = _read_sidecar(self.root / sidecar, sidecar)
        if raw is None:
            return AssetDescription()
        try:
            return check_sidecar(raw, self.vocabularies())
        except ValueError as exc:
            raise FileProblem(f"sidecar {sidecar}: {exc}", permanent=True) from None

    def vocabularies(self) -> dict[str, set[str]]:
        """The vocabularies by name, asked of Compass once per pass."""
        with self._vocabulary_lock:
            if self._vocabularies is None:
                try:
                    raw = self.client.vocabularies()
                except CompassError as exc:
                    raise FileProblem(
                        f"cannot check the sidecar against the vocabularies: {exc}",
                        permanent=False,
                    ) from exc
                self._vocabularies = vocabulary_values(raw)
            return self._vocabularies

    # -- afterwards -------------------------------------------------------------

    def synced(self, rel_path: str, asset_id: int) -> None:
        """Apply `after_ingest` to a verified file and its sidecar."""
        after = self.mapping.after_ingest
        if after == "keep":
            return
        if after == "move":
            moved = self._move(rel_path, DONE)
            if moved is None:
                return  # still in place and synced: the next pass tries again
            log.info("%s: asset %d; moved to %s", rel_path, asset_id, moved)
        else:
            if not self._delete(rel_path):
                return
            log.info("%s: asset %d; deleted from the drop box", rel_path, asset_id)
        # The file left the root on purpose: it must not read as a local deletion.
        self.ledger.remove_entries(self.mapping_id, [rel_path])

    def failed(self, rel_path: str, reason: str, *, permanent: bool) -> None:
        """Move a file retrying cannot fix to failed/, with the reason beside it."""
        if not permanent or self.mapping.after_ingest != "move":
            return
        if not _is_regular(self.root / rel_path):
            return  # links, devices, vanished or unnamable paths stay where they are
        moved = self._move(rel_path, FAILED)
        if moved is None:
            return
        note = self.root / (moved + ERROR_SUFFIX)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            note.write_text(f"{rel_path}: {reason}\n(failed at {stamp})\n", "utf-8")
        except OSError as exc:
            log.warning("%s: cannot write %s: %s", rel_path, note, exc.strerror)
        log.info("%s: moved to %s: %s", rel_path, moved, reason)

    def recover(self) -> None:
        """Finish `after_ingest` for files a previous run verified but did not move.

        In move and delete modes an entry never outlives its file in the root: a file
        still there unchanged is moved or deleted now, and an entry whose file is gone
        is forgotten (never taken for a deletion to send to Compass).
        """
        if self.mapping.after_ingest == "keep":
            return
        gone: list[str] = []
        for rel_path, entry in self.ledger.entries(self.mapping_id).items():
            if entry.kind != "file":
                continue
            try:
                st = os.lstat(self.root / rel_path)
            except OSError:
                gone.append(rel_path)
                continue
            if (st.st_size, st.st_mtime_ns, st.st_ino) == (
                entry.size,
                entry.mtime_ns,
                entry.inode,
            ):
                self.synced(rel_path, entry.asset_id or 0)
        self.ledger.remove_entries(self.mapping_id, gone)

    def _move(self, rel_path: str, folder: str) -> str | None:
        """Move a file and its sidecar under `folder`; its new relative path or None."""
        with self._move_lock:
            target = _free_path(self.root / folder / rel_path)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.root / rel_path, target)
            except OSError as exc:
                log.warning(
                    "%s: cannot move it to %s/: %s", rel_path, folder, exc.strerror
                )
                return None
            sidecar = self.root / sidecar_of(rel_path)
            if _is_regular(sidecar):
                try:
                    os.replace(sidecar, Path(str(target) + SIDECAR_SUFFIX))
                except OSError as exc:
                    log.warning("%s: cannot move its sidecar: %s", rel_path, exc)
        return target.relative_to(self.root).as_posix()

    def _delete(self, rel_path: str) -> bool:
        """Delete a file and its sidecar; whether the file is gone."""
        for path in (self.root / sidecar_of(rel_path), self.root / rel_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("%s: cannot delete it: %s", path, exc.strerror)
                return False
        return True


def _free_path(path: Path) -> Path:
    """`path`, or `name (2).ext`, `name (3).ext`... if it is taken."""
    if not path.exists():
        return path
    for number in range(2, 100_000):
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise FileProblem(f"{path}: no free name to move the file to", permanent=False)


def _read_sidecar(path: Path, sidecar: str) -> Any:
    """The sidecar's JSON, or None when there is no sidecar."""
    try:
        if not _is_regular(path):
            return None
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise FileProblem(
                f"sidecar {sidecar}: larger than {MAX_SIDECAR_BYTES} bytes",
                permanent=True,
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(
            f"sidecar {sidecar}: cannot read it: {exc}", permanent=True
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileProblem(
            f"sidecar {sidecar}: not valid JSON: {exc}", permanent=True
        ) from None


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

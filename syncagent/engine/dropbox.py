"""Drop box mode: sidecar metadata at ingest, then `after_ingest` keep, delete or move.

A file `<name>` dropped with a sidecar `<name>.json` beside it gets the sidecar's
`custom_metadata_fields` and `titles`, checked against the vocabularies first; a bad
sidecar fails that file alone. With `after_ingest = "move"`, a verified file moves to
`done/` and a file that failed for good moves to `failed/` with `<name>.error.txt`
(a shorter note name when that one would be too long for the disk); with "delete" a
verified file is deleted. The sidecar follows its file, and a subfolder that a file
leaving emptied is removed. A verified file that cannot leave is recorded as failed.
`done/` and `failed/` are never ingested. Every move, note and delete goes through
`SafeRoot`, so nothing is written through a symbolic link or outside the root, and
nothing already in `done/` or `failed/` is replaced. Reading and checking sidecars is
`sidecar.py`.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from syncagent.compass import CompassClient, CompassError
from syncagent.config import MappingConfig
from syncagent.engine.filters import PathFilter
from syncagent.engine.hooks import AssetDescription, PassHooks
from syncagent.engine.problems import FileProblem
from syncagent.engine.safe_root import Dir, Identity, Occupied, SafeRoot, UnsafePath
from syncagent.engine.scanner import LocalFile, scan_tree, stat_file
from syncagent.engine.sidecar import (
    FRESH_SECONDS,
    SIDECAR_SUFFIX,
    check_sidecar,
    is_sidecar,
    parse_sidecar,
    read_sidecar,
    sidecar_of,
    vocabulary_values,
)
from syncagent.engine.writers import open_for_writing
from syncagent.ledger import EntryRecord, Ledger

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"
ERROR_SUFFIX = ".error.txt"
# Beyond this many ` (n)` names the folder is in a state no one meant; leave the file.
MAX_NUMBERED_NAMES = 10_000
# The longest file name most disks take, in bytes (Linux NAME_MAX, APFS, NTFS-ish).
NAME_MAX_BYTES = 255

Defer = Callable[[LocalFile], bool]
HooksFor = Callable[[MappingConfig, int], PassHooks]


class Left(NamedTuple):
    """A file that left the drop box: its new relative path (empty once deleted) and
    whether its sidecar went with it."""

    rel_path: str
    with_sidecar: bool


def ingest_mapping(mapping: MappingConfig) -> MappingConfig:
    """The mapping as a pass scans it: a drop box's done/ and failed/ are left out."""
    if mapping.mode != "dropbox":
        return mapping
    return replace(mapping, exclude=(*mapping.exclude, f"/{DONE}", f"/{FAILED}"))


def moves_on_ingest(mapping: MappingConfig) -> bool:
    """Whether verified files leave the mapping's root (a drop box that moves or
    deletes them)."""
    return mapping.mode == "dropbox" and mapping.after_ingest != "keep"


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
    if not _is_dir(base):
        return []  # a link in place of failed/ is not followed
    for directory, _, names in os.walk(base):
        present = set(names)
        for name in names:
            if name.endswith(ERROR_SUFFIX) or _is_sidecar_name(name, present):
                continue
            path = Path(directory) / name
            reason, failed_at = _read_note(Path(directory) / note_name(name))
            rel_path = path.relative_to(root).as_posix()
            found.append(FailedDrop(rel_path, reason, failed_at))
    return sorted(found, key=lambda drop: (drop.failed_at, drop.rel_path))


def note_name(name: str) -> str:
    """The name of the note beside a file in failed/: `<name>.error.txt`, or, when
    that would be too long for the disk, the name cut short and a digest of it."""
    note = name + ERROR_SUFFIX
    if len(note.encode("utf-8")) <= NAME_MAX_BYTES:
        return note
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return _fitted(name, f"~{digest}{ERROR_SUFFIX}")


def _fitted(stem: str, tail: str) -> str:
    """`stem + tail`, the stem cut (on a character) so the whole fits in a name."""
    room = NAME_MAX_BYTES - len(tail.encode("utf-8"))
    cut = stem.encode("utf-8", "surrogateescape")[:room]
    return cut.decode("utf-8", "ignore") + tail


def _is_sidecar_name(name: str, names: set[str]) -> bool:
    """Whether `name` is `<file>.json` with `<file>` among `names`."""
    return name.endswith(SIDECAR_SUFFIX) and name[: -len(SIDECAR_SUFFIX)] in names


def _read_note(note: Path) -> tuple[str, datetime]:
    """The first line and time of a `.error.txt` note, never read through a link."""
    try:
        fd = os.open(note, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as stream:
            failed_at = datetime.fromtimestamp(os.fstat(fd).st_mtime, UTC)
            reason = stream.read(64 * 1024).decode("utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return "no reason recorded", datetime.now(UTC)
    return reason, failed_at


def _is_dir(path: Path) -> bool:
    try:
        return stat_module.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


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
    """What a pass leaves alone: a drop box's sidecars, what `defer` says, and in a
    drop box a file whose sidecar `defer` says is still being written."""
    if not isinstance(hooks, DropBoxHooks):
        return defer
    if defer is None:
        return hooks.holds
    outer = defer

    def deferred(local: LocalFile) -> bool:
        if hooks.holds(local):
            return True
        sidecar = stat_file(hooks.root, sidecar_of(local.rel_path))
        if sidecar is not None and outer(sidecar):
            log.debug("%s: waiting for its sidecar to settle", local.rel_path)
            return True
        return outer(local)

    return deferred


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
        self.safe = SafeRoot(mapping.local_root)
        self.mapping_id = mapping_id
        self.client = client
        self.ledger = ledger
        self._vocabularies: dict[str, set[str]] | None = None
        self._vocabulary_lock = threading.Lock()
        self._move_lock = threading.Lock()
        self._stuck: dict[str, str] = {}
        self._left: dict[str, int] = {}
        self._stuck_lock = threading.Lock()

    def holds(self, local: LocalFile) -> bool:
        """Sidecars travel with their file and are never ingested on their own."""
        return is_sidecar(self.root, local.rel_path)

    # -- at ingest --------------------------------------------------------------

    def describe(self, rel_path: str) -> AssetDescription:
        """The sidecar's metadata, checked; FileProblem if it is bad (permanent,
        unless it is half-written JSON that changed moments ago)."""
        sidecar = sidecar_of(rel_path)
        try:
            with self.safe.parent_of(rel_path) as (directory, name):
                found = read_sidecar(directory, sidecar_of(name))
        except FileNotFoundError:
            found = None  # the file's folder went: the file fails on its own
        except UnsafePath as exc:
            raise FileProblem(
                f"sidecar {sidecar}: {exc.reason}", permanent=True
            ) from None
        except OSError as exc:
            raise FileProblem(
                f"sidecar {sidecar}: cannot read it: {exc.strerror or exc}",
                permanent=True,
            ) from exc
        if found is None:
            return AssetDescription()
        data, mtime = found
        raw = parse_sidecar(data, sidecar, fresh=time.time() - mtime < FRESH_SECONDS)
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
        entry = self.ledger.entry(self.mapping_id, rel_path)
        if entry is not None and not self._still_verified(rel_path, entry):
            return
        if after == "move":
            left = self._move(rel_path, DONE)
            if left is None:
                return  # still in place and synced: the next pass tries again
            where, counter = f"moved to {left.rel_path}", "moved_to_done"
        else:
            left = self._delete(rel_path)
            if left is None:
                return
            where, counter = "deleted from the drop box", "deleted_after_upload"
        log.info(
            "%s: asset %d; %s%s", rel_path, asset_id, where, _along(rel_path, left)
        )
        # The file left the root on purpose: it must not read as a local deletion.
        self.ledger.remove_entries(self.mapping_id, [rel_path])
        self.ledger.clear_failures(self.mapping_id, [rel_path])
        with self._stuck_lock:
            self._stuck.pop(rel_path, None)
            self._left[counter] = self._left.get(counter, 0) + 1
        self._remove_emptied(rel_path)

    def _still_verified(self, rel_path: str, entry: EntryRecord) -> bool:
        """Whether the file at `rel_path` is still the one verified in Compass. One
        put in its place meanwhile (a copy tool's rename over it) is a new drop: it
        stays for the next pass, and the verified one's entry is forgotten. One
        written to since (same inode) stays too, its entry kept: the next pass
        sends it as a revision of the same asset."""
        try:
            found = self.safe.identity(rel_path)
        except (UnsafePath, OSError):
            found = None
        if (
            found is not None
            and found.inode == entry.inode
            and (
                found != Identity.of_entry(entry)
                or open_for_writing(self.root / rel_path)
            )
        ):
            # Written to since it was read: its writer had not finished. Moved or
            # deleted now, the rest would never reach Compass.
            log.warning(
                "%s: written to again after its upload (asset %d holds it as it "
                "was); it stays, and goes up again as a new revision once it holds "
                "still",
                rel_path,
                entry.asset_id or 0,
            )
            return False
        if found is None or found == Identity.of_entry(entry):
            return True  # gone already, or still the same: after_ingest goes on
        log.info(
            "%s: asset %d holds the file as it was; a new file took its place while "
            "it went up and stays for the next pass, as a new drop",
            rel_path,
            entry.asset_id or 0,
        )
        self.ledger.remove_entries(self.mapping_id, [rel_path])
        return False

    def failed(self, rel_path: str, reason: str, *, permanent: bool) -> None:
        """Move a file retrying cannot fix to failed/, with the reason beside it."""
        if not permanent or self.mapping.after_ingest != "move":
            return
        try:
            if self.safe.identity(rel_path) is None:
                return
        except (UnsafePath, OSError):
            return  # links, devices, unnamable paths or their folders stay put
        left = self._move(rel_path, FAILED)
        if left is None:
            return
        moved = left.rel_path
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        text = f"{rel_path}: {reason}\n(failed at {stamp})\n"
        try:
            with self.safe.parent_of(moved) as (directory, name):
                directory.write_new(note_name(name), text.encode("utf-8"))
        except FileProblem as exc:
            log.warning("%s: no note beside %s: %s", rel_path, moved, exc.reason)
        except OSError as exc:
            log.warning("%s: no note beside %s: %s", rel_path, moved, exc.strerror)
        log.info(
            "%s: moved to %s%s: %s", rel_path, moved, _along(rel_path, left), reason
        )
        self._remove_emptied(rel_path)

    def recover(self) -> None:
        """Finish `after_ingest` for files a previous run verified but did not move.

        In move and delete modes an entry never outlives its file in the root: a file
        still there unchanged is moved or deleted now, and an entry whose file is gone
        is forgotten (never taken for a deletion to send to Compass) — unless the file
        was renamed or moved inside the drop box meanwhile: that entry is left for the
        pass, which renames the asset, and the pass after it moves the file on.
        """
        if self.mapping.after_ingest == "keep":
            return
        gone: list[EntryRecord] = []
        for rel_path, entry in self.ledger.entries(self.mapping_id).items():
            if entry.kind != "file":
                continue
            try:
                found = self.safe.identity(rel_path)
            except (UnsafePath, OSError):
                found = None  # a link or a file now in its way: it is not here
            if found is None:
                gone.append(entry)
            elif found == Identity.of_entry(entry):
                self.synced(rel_path, entry.asset_id or 0)
        moved = self._moved_meanwhile(gone)
        forgotten = [e.rel_path for e in gone if Identity.of_entry(e) not in moved]
        self.ledger.remove_entries(self.mapping_id, forgotten)

    def _moved_meanwhile(self, gone: list[EntryRecord]) -> set[Identity]:
        """The identities of `gone` entries whose file is elsewhere in the drop box."""
        if not gone:
            return set()
        scanned = ingest_mapping(self.mapping)
        tree = scan_tree(self.root, PathFilter(scanned.include, scanned.exclude))
        present = {Identity(f.size, f.mtime_ns, f.inode) for f in tree.files.values()}
        return {Identity.of_entry(e) for e in gone} & present

    def _move(self, rel_path: str, folder: str) -> Left | None:
        """Move a file and its sidecar under `folder`; None if it stays.

        A link or a file where a folder should be, or no free name, leaves the file
        where it is; a verified file left so is recorded as failed, saying why (the
        next pass tries again).
        """
        with self._move_lock:
            try:
                return self._move_into(rel_path, folder)
            except FileNotFoundError:
                log.debug("%s: gone before it was moved to %s/", rel_path, folder)
                return None
            except FileProblem as exc:
                why = exc.reason
            except OSError as exc:
                why = exc.strerror or str(exc)
        if folder == DONE:
            self._stays(rel_path, f"not moved to {DONE}/: {why}")
        else:
            log.warning("%s: not moved to %s/: %s", rel_path, folder, why)
        return None

    def _move_into(self, rel_path: str, folder: str) -> Left:
        """Move a file (then its sidecar) to a free name under `folder`."""
        rel_dir, _, name = rel_path.rpartition("/")
        target_dir = f"{folder}/{rel_dir}" if rel_dir else folder
        with self.safe.open_dir(rel_dir) as source:
            if source.regular(name) is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", rel_path)
            with self.safe.open_dir(target_dir, create=True) as target:
                placed = _place(source, name, target)
                with_sidecar = _move_sidecar(source, name, target, placed)
                target.sync()
                return Left(target.rel(placed), with_sidecar)

    def _delete(self, rel_path: str) -> Left | None:
        """Delete a file and its sidecar; None if the file is still there."""
        with_sidecar = False
        try:
            with self.safe.parent_of(rel_path) as (directory, name):
                directory.regular(name)
                if _sidecar_here(directory, sidecar_of(name)):
                    directory.unlink(sidecar_of(name))
                    with_sidecar = True
                directory.unlink(name)
        except FileNotFoundError:
            return Left("", with_sidecar)
        except FileProblem as exc:
            self._stays(rel_path, f"not deleted: {exc.reason}")
            return None
        except OSError as exc:
            self._stays(rel_path, f"not deleted: {exc.strerror or exc}")
            return None
        return Left("", with_sidecar)

    def _stays(self, rel_path: str, why: str) -> None:
        """A verified file that cannot leave the drop box is a failure `status` lists
        until it leaves; warned about once, not at every pass that tries again."""
        reason = f"uploaded, but {why}"
        with self._stuck_lock:
            self._stuck[rel_path] = reason
        known = self.ledger.failures(self.mapping_id)
        if any(f.rel_path == rel_path and f.reason == reason for f in known):
            log.debug("%s: %s (still)", rel_path, reason)
        else:
            log.warning("%s: %s; each pass tries again", rel_path, reason)
        self.ledger.record_failure(
            self.mapping_id, rel_path, "upload", reason, permanent=True
        )

    def left(self) -> dict[str, int]:
        """Files moved to done/ or deleted since these hooks began (the recovery
        before the pass included)."""
        with self._stuck_lock:
            return dict(self._left)

    def stuck(self) -> list[tuple[str, str]]:
        """Verified files that could not be moved or deleted since these hooks
        began (the recovery before the pass included)."""
        with self._stuck_lock:
            return sorted(self._stuck.items())

    def _remove_emptied(self, rel_path: str) -> None:
        """Remove the subfolders that `rel_path` leaving emptied, deepest first, if
        the mapping asks for it (remove_emptied_folders): by default they stay,
        since the folders of a drop box are often hot folders that people and
        scripts drop into again.

        Only a folder with nothing left in it goes (rmdir checks that atomically), so
        a file or folder put there meanwhile keeps it; the root, done/ and failed/
        always stay. Its entry goes too: the Compass folder stays, and a drop into a
        folder of that name again finds it.
        """
        if not self.mapping.remove_emptied_folders:
            return
        rel_dir = rel_path.rpartition("/")[0]
        removed = []
        while rel_dir and rel_dir not in (DONE, FAILED):
            if not self._remove_if_empty(rel_dir):
                break
            log.info("%s: folder left empty by the ingest; removed", rel_dir)
            removed.append(rel_dir)
            rel_dir = rel_dir.rpartition("/")[0]
        if removed:
            self.ledger.remove_entries(self.mapping_id, removed)

    def _remove_if_empty(self, rel_dir: str) -> bool:
        """Whether this call removed the folder `rel_dir`, found empty."""
        try:
            with self.safe.parent_of(rel_dir) as (parent, name):
                os.rmdir(name, dir_fd=parent.fd)
        except (FileProblem, OSError) as exc:
            quiet = (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT)
            if not isinstance(exc, OSError) or exc.errno not in quiet:
                log.debug("%s: empty folder kept: %s", rel_dir, exc)
            return False
        return True


def _sidecar_here(directory: Dir, name: str) -> bool:
    """Whether a sidecar travels with its file: anything by that name but a folder
    (a link or a pipe is moved as itself, never followed or opened)."""
    st = directory.lstat(name)
    return st is not None and not stat_module.S_ISDIR(st.st_mode)


def _place(source: Dir, name: str, target: Dir) -> str:
    """Move `name` into `target` under a name free for it, its sidecar and its note."""
    for candidate in _numbered(name):
        companions = (candidate, sidecar_of(candidate), note_name(candidate))
        if any(target.taken(companion) for companion in companions):
            continue
        try:
            source.move_new(name, target, candidate)
        except Occupied:
            continue  # taken since the look: try the next number
        return candidate
    raise FileProblem(f"no free name for it in {target.rel_dir}/", permanent=False)


def _numbered(name: str) -> Iterator[str]:
    """`name`, then `stem (2).ext`, `stem (3).ext`..."""
    yield name
    pure = PurePosixPath(name)
    for number in range(2, MAX_NUMBERED_NAMES):
        yield _fitted(pure.stem, f" ({number}){pure.suffix}")


def _move_sidecar(source: Dir, name: str, target: Dir, placed: str) -> bool:
    """Move a file's sidecar beside it, if it has one; whether it moved. On failure
    the sidecar stays, with a warning."""
    if not _sidecar_here(source, sidecar_of(name)):
        return False
    try:
        source.move_new(sidecar_of(name), target, sidecar_of(placed))
    except FileProblem as exc:
        log.warning("%s: its sidecar stays: %s", source.rel(name), exc.reason)
    except OSError as exc:
        log.warning("%s: its sidecar stays: %s", source.rel(name), exc.strerror)
    else:
        return True
    return False


def _along(rel_path: str, left: Left) -> str:
    """The words a log line adds for a sidecar that went with its file."""
    return f", with its sidecar {sidecar_of(rel_path)}" if left.with_sidecar else ""

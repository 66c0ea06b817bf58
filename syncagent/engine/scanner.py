"""Walk a mapping's local root: every regular file with its size, mtime and inode.

The walk never follows a symbolic link and never reads file contents. What it cannot
take (links that leave the root or lead nowhere, names that are not UTF-8, folders it
cannot list, devices) is reported as a problem with its reason; the walk goes on. A
path gone between its folder's listing and a look at it (renamed or deleted meanwhile)
is no problem: it is left unseen for this walk.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat as stat_module
from dataclasses import dataclass, field
from pathlib import Path

from syncagent.engine.filters import PathFilter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalFile:
    """A regular file as the scan saw it."""

    rel_path: str
    size: int
    mtime_ns: int
    inode: int

    def held_still(self, st: os.stat_result) -> bool:
        """Whether a later stat shows the file as the scan saw it (size, time and
        inode): what was read in between is the file the scan found."""
        return (st.st_size, st.st_mtime_ns, st.st_ino) == (
            self.size,
            self.mtime_ns,
            self.inode,
        )


@dataclass(frozen=True)
class ScanProblem:
    """A path the scan could not take, and why."""

    rel_path: str
    reason: str
    changed_ns: int | None = None
    """When the path last changed (its ctime), if it could be read: a problem
    already reported is not worth a new warning until then."""


@dataclass
class LocalTree:
    """What is on disk under a root now."""

    files: dict[str, LocalFile] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    problems: list[ScanProblem] = field(default_factory=list)
    unseen: set[str] = field(default_factory=set)
    """Folders the walk could not list ('' for the root) and entries it could not
    stat: what lies at or below them is unknown, not gone."""
    vanished: set[str] = field(default_factory=set)
    """The unseen paths that were listed, then gone when the walk looked at them:
    renamed or deleted meanwhile."""

    def sees(self, rel_path: str) -> bool:
        """Whether the walk saw the place of `rel_path` (so its absence means it is
        gone), rather than a folder above it that could not be listed."""
        return not self.unseen or _at_or_below(rel_path, self.unseen) is None

    def may_have_moved(self, rel_path: str) -> bool:
        """Whether `rel_path`, or a folder above it, vanished during the walk."""
        return bool(self.vanished) and _at_or_below(rel_path, self.vanished) is not None


def _at_or_below(rel_path: str, places: set[str]) -> str | None:
    """The first of `places` that is `rel_path` or a folder above it ('' the root)."""
    path = rel_path
    while True:
        if path in places:
            return path
        if "/" not in path:
            return "" if "" in places else None
        path = path.rsplit("/", 1)[0]


def stat_file(root: Path, rel_path: str) -> LocalFile | None:
    """A fresh look at one file; None if it is gone or no longer a regular file."""
    try:
        st = os.lstat(root / rel_path)
    except OSError:
        return None
    if not stat_module.S_ISREG(st.st_mode):
        return None
    return LocalFile(rel_path, st.st_size, st.st_mtime_ns, st.st_ino)


def scan_tree(root: Path, rules: PathFilter) -> LocalTree:
    """Walk `root` and return its files, directories and problems."""
    return _Walk(root, rules).run()


class _Walk:
    """One walk of a root, depth first, without recursion."""

    def __init__(self, root: Path, rules: PathFilter) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.rules = rules
        self.tree = LocalTree()
        self.pending = [""]

    def run(self) -> LocalTree:
        while self.pending:
            rel_dir = self.pending.pop()
            full_dir = os.path.join(self.root, rel_dir)
            try:
                with os.scandir(full_dir) as entries:
                    for entry in entries:
                        self.take(entry, rel_dir)
            except OSError as exc:
                if rel_dir and _vanished(exc):
                    self.tree.dirs.discard(rel_dir)
                    self.lost(rel_dir)
                    continue
                reason = f"cannot list the folder: {exc.strerror or exc}"
                self.problem(rel_dir or ".", reason, full_dir)
                self.tree.unseen.add(rel_dir)
        return self.tree

    def take(self, entry: os.DirEntry[str], rel_dir: str) -> None:
        rel_path = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if self.rules.excludes(rel_path):
            return
        if not _is_utf8(entry.name):
            reason = (
                "the name is not valid UTF-8, which Compass cannot store; rename it"
            )
            self.problem(_printable(rel_path), reason, entry.path)
            return
        if "\\" in entry.name:
            reason = (
                "the name holds a backslash, which Compass takes for a path "
                "separator and refuses; rename it"
            )
            self.problem(rel_path, reason, entry.path)
            return
        try:
            if entry.is_symlink():
                self.take_link(entry, rel_path)
            elif entry.is_dir(follow_symlinks=False):
                self.tree.dirs.add(rel_path)
                self.pending.append(rel_path)
            elif entry.is_file(follow_symlinks=False):
                if self.rules.wanted(rel_path):
                    st = entry.stat(follow_symlinks=False)
                    self.tree.files[rel_path] = LocalFile(
                        rel_path, st.st_size, st.st_mtime_ns, st.st_ino
                    )
            else:
                reason = "not a regular file (device, socket or pipe); skipped"
                self.problem(rel_path, reason, entry.path)
        except OSError as exc:
            if _vanished(exc):
                self.lost(rel_path)
                return
            reason = f"cannot read its attributes: {exc.strerror or exc}"
            self.problem(rel_path, reason, None)
            self.tree.unseen.add(rel_path)

    def take_link(self, entry: os.DirEntry[str], rel_path: str) -> None:
        """Report links that lead nowhere or out of the root; others are skipped
        quietly."""
        target = os.path.realpath(entry.path)
        if os.path.exists(target):
            if os.path.commonpath([self.real_root, target]) != self.real_root:
                reason = "symbolic link to outside the mapping; not followed"
                self.problem(rel_path, reason, entry.path)
            else:
                # The target is inside the root, so it is synced under its own path.
                log.debug(
                    "%s: symbolic link inside the mapping; not followed", rel_path
                )
        elif os.path.lexists(entry.path):
            reason = "broken symbolic link (its target does not exist); not followed"
            self.problem(rel_path, reason, entry.path)
        else:
            self.lost(rel_path)

    def problem(self, rel_path: str, reason: str, full_path: str | None) -> None:
        """Record a path the walk cannot take, with when it last changed."""
        changed_ns = None
        # Gone meanwhile, or not readable: it is reported all the same.
        with contextlib.suppress(OSError):
            if full_path is not None:
                changed_ns = os.lstat(full_path).st_ctime_ns
        self.tree.problems.append(ScanProblem(rel_path, reason, changed_ns))

    def lost(self, rel_path: str) -> None:
        """A path listed a moment ago is gone: renamed or deleted meanwhile. That is
        no problem, yet this walk cannot tell which: it counts as unseen, and the
        event of the rename or delete brings the pass that sees where it went."""
        log.debug("%s: gone since its folder was listed", rel_path)
        self.tree.unseen.add(rel_path)
        self.tree.vanished.add(rel_path)


def _vanished(exc: OSError) -> bool:
    """Whether an error says the path is no longer there (or a folder above it
    became something else)."""
    return exc.errno in (errno.ENOENT, errno.ENOTDIR)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(rel_path: str) -> str:
    """A name that is not UTF-8, with its odd bytes shown as \\xNN."""
    return os.fsencode(rel_path).decode("utf-8", "backslashreplace")

"""Walk a mapping's local root: every regular file with its size, mtime and inode.

The walk never follows a symbolic link and never reads file contents. What it cannot
take (links that leave the root or lead nowhere, names that are not UTF-8, folders it
cannot list, devices) is reported as a problem with its reason; the walk goes on.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class ScanProblem:
    """A path the scan could not take, and why."""

    rel_path: str
    reason: str


@dataclass
class LocalTree:
    """What is on disk under a root now."""

    files: dict[str, LocalFile] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    problems: list[ScanProblem] = field(default_factory=list)
    unseen: set[str] = field(default_factory=set)
    """Folders the walk could not list ('' for the root) and entries it could not
    stat: what lies at or below them is unknown, not gone."""

    def sees(self, rel_path: str) -> bool:
        """Whether the walk saw the place of `rel_path` (so its absence means it is
        gone), rather than a folder above it that could not be listed."""
        if not self.unseen:
            return True
        path = rel_path
        while True:
            if path in self.unseen:
                return False
            if "/" not in path:
                return "" not in self.unseen
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
            try:
                with os.scandir(os.path.join(self.root, rel_dir)) as entries:
                    for entry in entries:
                        self.take(entry, rel_dir)
            except OSError as exc:
                reason = f"cannot list the folder: {exc.strerror or exc}"
                self.tree.problems.append(ScanProblem(rel_dir or ".", reason))
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
            self.tree.problems.append(ScanProblem(_printable(rel_path), reason))
            return
        try:
            if entry.is_symlink():
                _check_link(entry.path, rel_path, self.real_root, self.tree)
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
                self.tree.problems.append(ScanProblem(rel_path, reason))
        except OSError as exc:
            reason = f"cannot read its attributes: {exc.strerror or exc}"
            self.tree.problems.append(ScanProblem(rel_path, reason))
            self.tree.unseen.add(rel_path)


def _check_link(path: str, rel_path: str, real_root: str, tree: LocalTree) -> None:
    """Report links that lead nowhere or out of the root; others are skipped quietly."""
    target = os.path.realpath(path)
    if not os.path.exists(target):
        reason = "broken symbolic link (its target does not exist); not followed"
        tree.problems.append(ScanProblem(rel_path, reason))
    elif os.path.commonpath([real_root, target]) != real_root:
        reason = "symbolic link to outside the mapping; not followed"
        tree.problems.append(ScanProblem(rel_path, reason))
    else:
        # The target is inside the root, so it is synced under its own path.
        log.debug("%s: symbolic link inside the mapping; not followed", rel_path)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(rel_path: str) -> str:
    """A name that is not UTF-8, with its odd bytes shown as \\xNN."""
    return os.fsencode(rel_path).decode("utf-8", "backslashreplace")

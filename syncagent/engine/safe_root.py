"""Write below a mapping root without ever leaving it or passing through a symlink.

Every directory is opened component by component from the root's own descriptor with
`O_NOFOLLOW`, and every change (create, link, rename, remove) is made relative to such
a descriptor. A symbolic link, a `..` or a file in the way makes the operation fail
with `UnsafePath`; nothing is written through it. The root itself may be a link the
user configured. Needs `dir_fd` support (Linux, macOS and the BSDs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from syncagent.engine.problems import FileProblem

if TYPE_CHECKING:
    from syncagent.ledger.records import EntryRecord

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(FileProblem):
    """A path leaves the root, passes through a link, or has a file in the way."""

    def __init__(self, rel_path: str, why: str) -> None:
        super().__init__(f"{why}; nothing was written there", permanent=True)
        self.rel_path = rel_path


class Occupied(FileProblem):
    """The target name is taken (by a file that appeared since the plan)."""

    def __init__(self, rel_path: str) -> None:
        super().__init__(
            f"{rel_path} appeared meanwhile; left as it is, retried next pass",
            permanent=False,
        )


class LocalChanged(FileProblem):
    """A synced file changed since it was recorded: it is never overwritten."""

    def __init__(self, rel_path: str) -> None:
        super().__init__(
            f"{rel_path} changed here; it was not overwritten", permanent=False
        )


@dataclass(frozen=True)
class Identity:
    """What a file looked like: size, modification time and inode."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        """The identity of a stat result."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)

    @classmethod
    def of_entry(cls, entry: EntryRecord) -> Identity:
        """The identity a synced file had when the ledger recorded it."""
        return cls(entry.size or 0, entry.mtime_ns or 0, entry.inode or 0)


def split_rel_path(rel_path: str) -> list[str]:
    """The components of a relative path; refuses `..`, `.`, empty and NUL parts."""
    parts = rel_path.split("/") if rel_path else []
    for part in parts:
        if part in ("", ".", "..") or "\0" in part:
            raise UnsafePath(rel_path, f"{rel_path!r} is not a plain relative path")
    return parts


class Dir:
    """An open directory below the root; names are single components."""

    def __init__(self, fd: int, rel_dir: str) -> None:
        self.fd = fd
        self.rel_dir = rel_dir

    def rel(self, name: str) -> str:
        """The root-relative path of a name in this directory."""
        return f"{self.rel_dir}/{name}" if self.rel_dir else name

    def lstat(self, name: str) -> os.stat_result | None:
        """The name's own stat (a link is not followed), or None if it is absent
        (a name too long for the disk is absent: nothing can have it)."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                return None
            raise

    def regular(self, name: str) -> os.stat_result | None:
        """The stat of a regular file; None if absent; UnsafePath if something else."""
        st = self.lstat(name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafePath(self.rel(name), f"{self.rel(name)} is not a regular file")
        return st

    def open_file(self, name: str, flags: int, mode: int = 0o644) -> int:
        """Open a file here without following a link."""
        try:
            return os.open(
                name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.fd
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(
                    self.rel(name), "a symbolic link is in the way"
                ) from exc
            raise

    def read(self, name: str) -> BinaryIO:
        """A regular file here, opened for reading."""
        return os.fdopen(self.open_file(name, os.O_RDONLY), "rb")

    def link_new(self, name: str, target: Dir, target_name: str) -> bool:
        """Give a file a second name; Occupied if that name is taken. On a disk
        without hard links the file is renamed instead: False says so."""
        try:
            # Never follow: a file swapped for a link since it was checked is moved
            # as the link it now is, not as what it points to.
            os.link(
                name,
                target_name,
                src_dir_fd=self.fd,
                dst_dir_fd=target.fd,
                follow_symlinks=False,
            )
            return True
        except FileExistsError:
            raise Occupied(target.rel(target_name)) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
        # The disk has no hard links: check, then rename (a narrow race remains).
        if target.lstat(target_name) is not None:
            raise Occupied(target.rel(target_name))
        os.rename(name, target_name, src_dir_fd=self.fd, dst_dir_fd=target.fd)
        return False

    def move_new(self, name: str, target: Dir, target_name: str) -> None:
        """Move a regular file to a name that must be free (never replacing).

        A file that cannot leave this folder (one that forbids removing names)
        stays only here: its new name is taken back before the error is raised, so
        a move tried again at every pass leaves no second copy behind each time.
        """
        if not self.link_new(name, target, target_name):
            return
        try:
            self.unlink(name)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(target_name, dir_fd=target.fd)
            raise

    def write_new(self, name: str, data: bytes) -> None:
        """Create a file that must not exist yet; Occupied if anything has the name."""
        try:
            fd = self.open_file(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            raise Occupied(self.rel(name)) from None
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)

    def taken(self, name: str) -> bool:
        """Whether anything (a file, a folder, a link) has this name here."""
        return self.lstat(name) is not None

    def replace(self, name: str, target_name: str) -> None:
        """Rename a file over another in this directory, atomically."""
        os.rename(name, target_name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        """Remove a file here if it exists."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def sync(self) -> None:
        """Make the directory's entries durable."""
        with contextlib.suppress(OSError):
            os.fsync(self.fd)


class SafeRoot:
    """The local root of a mapping, reached only through checked descriptors."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if os.open not in os.supports_dir_fd or os.link not in os.supports_dir_fd:
            raise FileProblem(
                "pulls need a platform that can open files relative to a folder "
                "(Linux, macOS, BSD)",
                permanent=True,
            )

    @contextmanager
    def open_dir(self, rel_dir: str, *, create: bool = False) -> Iterator[Dir]:
        """Open a directory below the root, making missing ones when `create`."""
        parts = split_rel_path(rel_dir)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for depth, part in enumerate(parts, start=1):
                child = _open_child(fd, part, "/".join(parts[:depth]), create=create)
                os.close(fd)
                fd = child
            yield Dir(fd, rel_dir)
        finally:
            os.close(fd)

    @contextmanager
    def parent_of(
        self, rel_path: str, *, create: bool = False
    ) -> Iterator[tuple[Dir, str]]:
        """The directory holding a path, and the path's last component."""
        parts = split_rel_path(rel_path)
        if not parts:
            raise UnsafePath(rel_path, "the mapping root itself cannot be changed")
        with self.open_dir("/".join(parts[:-1]), create=create) as directory:
            yield directory, parts[-1]

    def make_dir(self, rel_dir: str) -> None:
        """Make a directory and its parents (nothing if it exists)."""
        with self.open_dir(rel_dir, create=True):
            pass

    def move_file(
        self, old_rel_path: str, new_rel_path: str, expect: Identity | None = None
    ) -> Identity:
        """Move a regular file to a free path, checking it is the file expected."""
        with (
            self.parent_of(old_rel_path) as (source, old_name),
            self.parent_of(new_rel_path, create=True) as (target, new_name),
        ):
            st = source.regular(old_name)
            if st is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", old_rel_path)
            if expect is not None and Identity.of(st) != expect:
                raise LocalChanged(old_rel_path)
            source.move_new(old_name, target, new_name)
            target.sync()
            return Identity.of(st)

    def move_dir(self, old_rel_dir: str, new_rel_dir: str) -> None:
        """Move a directory (with its contents) to a free path."""
        with (
            self.parent_of(old_rel_dir) as (source, old_name),
            self.parent_of(new_rel_dir, create=True) as (target, new_name),
        ):
            st = source.lstat(old_name)
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise UnsafePath(old_rel_dir, f"{old_rel_dir} is not a directory")
            if target.lstat(new_name) is not None:
                raise Occupied(new_rel_dir)
            os.rename(old_name, new_name, src_dir_fd=source.fd, dst_dir_fd=target.fd)
            target.sync()

    def remove_empty_dir(self, rel_dir: str) -> bool:
        """Remove a directory if it is empty; False if it holds anything."""
        with self.parent_of(rel_dir) as (parent, name):
            st = parent.lstat(name)
            if st is None:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False
            try:
                os.rmdir(name, dir_fd=parent.fd)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    return False
                raise
            return True

    def is_dir(self, rel_path: str) -> bool:
        """Whether a real directory (not a link to one) is at a path."""
        try:
            with self.open_dir(rel_path):
                return True
        except (FileNotFoundError, UnsafePath):
            return False

    def identity(self, rel_path: str) -> Identity | None:
        """The identity of a regular file, None if it is absent."""
        try:
            with self.parent_of(rel_path) as (directory, name):
                st = directory.regular(name)
        except FileNotFoundError:
            return None
        return Identity.of(st) if st is not None else None


def _open_child(parent: int, name: str, rel_path: str, *, create: bool) -> int:
    """Open one directory below `parent`, never through a link."""
    for _ in range(3):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(
                    rel_path, f"{rel_path} is a symbolic link or a file, not a folder"
                ) from exc
            raise
    raise UnsafePath(rel_path, f"{rel_path} keeps changing")

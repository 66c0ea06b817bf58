"""What a pull sees on disk: every name in the mapping, whatever the filters say.

A pull must know every name a directory holds (hidden, excluded, links, devices) so it
never writes over one, and the size, mtime and inode of regular files so it can tell an
unsynced local change. Symbolic links are listed as names and never followed; the
agent's own folders (trash, proxies) and temp files are left out.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from syncagent.engine.names import AGENT_PREFIX, PROXY_DIR, TRASH_DIR, tagged_asset_id
from syncagent.engine.scanner import LocalFile

MAX_ENTRIES = 10_000_000


@dataclass
class LocalView:
    """Regular files, directories and every other name below a root.

    `temps` are the agent's unfinished downloads, with their modification times;
    `linked_temps` those of them with more than one name (a download placed by a
    run stopped before it removed the temp name, or a link planted there).
    """

    files: dict[str, LocalFile] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    temps: dict[str, int] = field(default_factory=dict)
    linked_temps: set[str] = field(default_factory=set)

    _index: dict[str, dict[str, str]] | None = field(default=None, repr=False)

    def names_in(self, rel_dir: str) -> dict[str, str]:
        """The names directly in a directory, each with 'file', 'dir' or 'other'."""
        if self._index is None:
            self._index = {}
            for kind, paths in (
                ("other", self.others),
                ("dir", self.dirs),
                ("file", self.files),
            ):
                for rel_path in paths:
                    parent, _, name = rel_path.rpartition("/")
                    self._index.setdefault(parent, {})[name] = kind
        return self._index.get(rel_dir, {})


@dataclass
class FileNames:
    """The regular files of one directory, found by their NFC form or by the asset
    their name is tagged with (`photo (asset 7).jpg`): names a pull may have given."""

    by_nfc: dict[str, list[str]] = field(default_factory=dict)
    by_asset: dict[int, list[str]] = field(default_factory=dict)


def file_names(view: LocalView, rel_dir: str) -> FileNames:
    """Index the regular files directly in `rel_dir`."""
    found = FileNames()
    for name, kind in sorted(view.names_in(rel_dir).items()):
        if kind != "file":
            continue
        nfc = unicodedata.normalize("NFC", name)
        # Two names may differ only in normal form (`café` composed and not).
        found.by_nfc.setdefault(nfc, []).append(name)
        asset_id = tagged_asset_id(nfc)
        if asset_id is not None:
            found.by_asset.setdefault(asset_id, []).append(name)
    return found


def scan_local(root: Path) -> LocalView:
    """Walk `root` without following links; unreadable folders count as 'other'."""
    view = LocalView()
    pending = [""]
    seen = 0
    while pending and seen < MAX_ENTRIES:
        rel_dir = pending.pop()
        try:
            with _listing(root, rel_dir) as entries:
                for entry in entries:
                    seen += 1
                    _take(view, pending, rel_dir, entry)
        except OSError:
            view.dirs.discard(rel_dir)
            view.others.add(rel_dir)
    return view


# Paths this long may not be opened whole (PATH_MAX is 4096 bytes on Linux, with
# room kept for one more name below the folder).
_LONG_PATH = 4096 - 256


@contextmanager
def _listing(root: Path, rel_dir: str) -> Iterator[Iterator[os.DirEntry[str]]]:
    """The entries of a folder below the root. A folder whose path is about as long
    as the system takes is opened folder by folder from the root, as downloads
    place files there: listed by path, it (or a file in it) would look unreadable,
    and its files would be downloaded again at every pass."""
    path = os.path.join(root, rel_dir)
    if len(os.fsencode(path)) < _LONG_PATH:
        with os.scandir(path) as entries:
            yield entries
        return
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in rel_dir.split("/"):
            child = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd
            )
            os.close(fd)
            fd = child
        with os.scandir(fd) as by_fd:
            yield by_fd
    finally:
        os.close(fd)


def _take(
    view: LocalView, pending: list[str], rel_dir: str, entry: os.DirEntry[str]
) -> None:
    if not rel_dir and entry.name in (TRASH_DIR, PROXY_DIR):
        return
    rel_path = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
    if entry.name.startswith(AGENT_PREFIX):
        if entry.name.endswith(".part") and entry.is_file(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            view.temps[rel_path] = st.st_mtime_ns
            if st.st_nlink > 1:
                view.linked_temps.add(rel_path)
        return
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        view.others.add(rel_path)
        return
    if stat.S_ISREG(st.st_mode):
        view.files[rel_path] = LocalFile(
            rel_path, st.st_size, st.st_mtime_ns, st.st_ino
        )
    elif stat.S_ISDIR(st.st_mode):
        view.dirs.add(rel_path)
        pending.append(rel_path)
    else:
        view.others.add(rel_path)


def scan_proxies(root: Path) -> dict[str, int]:
    """The regular files below the root's proxy folder, with their sizes."""
    found: dict[str, int] = {}
    top = root / PROXY_DIR
    for directory, dirnames, filenames in os.walk(top):
        rel_dir = Path(directory).relative_to(root).as_posix()
        dirnames[:] = [d for d in dirnames if not os.path.islink(Path(directory, d))]
        for name in filenames:
            st = os.lstat(Path(directory, name))
            if stat.S_ISREG(st.st_mode):
                found[f"{rel_dir}/{name}"] = st.st_size
    return found

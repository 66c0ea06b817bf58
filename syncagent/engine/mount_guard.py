"""Telling an unmounted share from a folder whose files were deleted on purpose.

While a share is not mounted, its mount point is an ordinary folder: empty, or holding
a new disk's `lost+found`, a `.DS_Store`, a file someone saved there meanwhile. Taken
at its word, it says every synced file was deleted: a mapping that removes assets
would remove them all, one that keeps them would forget them all (and hash the whole
share again once it is back, duplicating assets revised meanwhile), a two-way one
would keep them from coming back down, and a mirror would download the whole library
into the mount point. A folder in which not one synced file is left, under its path
or under another name (its inode), is taken for such a mount point instead; a drop
box, which empties itself, is the exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from syncagent.engine.scanner import LocalFile
from syncagent.ledger import EntryRecord


def unmounted_message(root: object) -> str:
    """What a pass stopped by looks_unmounted() says, with the way out."""
    return (
        f"{root}: not one of the files synced with this folder is left in it; "
        "nothing is forgotten, removed or pulled (is the share or disk unmounted? "
        f"If you emptied it on purpose, `syncagent db forget {root}` starts this "
        "mapping afresh, with no agent running on the ledger)"
    )


def looks_unmounted(
    files: Mapping[str, LocalFile],
    synced: Iterable[EntryRecord],
    covers: Callable[[str], bool],
) -> bool:
    """Whether none of the synced files the filters still cover is in `files`,
    while there are several: one file deleted leaves none too, and that is an
    ordinary delete."""
    entries = [e for e in synced if e.kind == "file" and covers(e.rel_path)]
    if len(entries) <= 1:
        return False
    inodes = {f.inode for f in files.values()}
    return not any(e.rel_path in files or e.inode in inodes for e in entries)

"""An unmounted share's mount point told from a folder emptied on purpose."""

from __future__ import annotations

from syncagent.config import DEFAULT_EXCLUDES
from syncagent.engine.filters import PathFilter
from syncagent.engine.mount_guard import looks_unmounted
from syncagent.engine.scanner import LocalFile
from syncagent.ledger import EntryRecord

COVERS = PathFilter(["*"], DEFAULT_EXCLUDES).covers


def synced(rel_path: str, inode: int) -> EntryRecord:
    return EntryRecord(rel_path, "file", 1001, inode, rel_path, 4, 1, inode, "c")


def found(*files: tuple[str, int]) -> dict[str, LocalFile]:
    return {path: LocalFile(path, 4, 2, inode) for path, inode in files}


SYNCED = [synced("a.txt", 11), synced("sub/b.txt", 12), synced("c.txt", 13)]


def test_a_folder_without_one_synced_file_looks_unmounted() -> None:
    for mount_point in (
        found(),
        found((".DS_Store", 90)),
        found(("untitled.txt", 91), ("README-not-mounted.txt", 92)),
    ):
        assert looks_unmounted(mount_point, SYNCED, COVERS), mount_point


def test_one_synced_file_left_or_renamed_means_the_share_is_there() -> None:
    assert not looks_unmounted(found(("c.txt", 13)), SYNCED, COVERS)
    assert not looks_unmounted(found(("renamed.txt", 12)), SYNCED, COVERS)


def test_one_synced_file_deleted_is_an_ordinary_delete() -> None:
    assert not looks_unmounted(found(), SYNCED[:1], COVERS)


def test_files_the_filters_now_leave_out_do_not_count() -> None:
    narrowed = PathFilter(["*"], [*DEFAULT_EXCLUDES, "*.txt"]).covers
    left = [*SYNCED, synced("clip.mov", 14)]

    assert not looks_unmounted(found(("clip.mov", 14)), left, narrowed)
    assert not looks_unmounted(found(), left, narrowed)  # one synced file covered

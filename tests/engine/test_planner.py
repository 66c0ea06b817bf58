"""The upload planner: lists in, operations out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncagent.engine.planner import confirm_deleted, plan_upload_pass
from syncagent.engine.scanner import LocalFile, LocalTree
from syncagent.ledger import EntryRecord


def synced_file(
    rel_path: str, size: int = 10, mtime: int = 1, inode: int = 1
) -> EntryRecord:
    return EntryRecord(
        rel_path=rel_path,
        kind="file",
        folder_id=1001,
        asset_id=inode + 500,
        remote_name=rel_path.rsplit("/", 1)[-1],
        size=size,
        mtime_ns=mtime,
        inode=inode,
        checksum="0" * 32,
    )


def synced_dir(rel_path: str, folder_id: int = 2000) -> EntryRecord:
    return EntryRecord(
        rel_path, "dir", folder_id, None, rel_path, None, None, None, None
    )


def tree(*files: LocalFile, dirs: tuple[str, ...] = ()) -> LocalTree:
    return LocalTree(files={f.rel_path: f for f in files}, dirs=set(dirs))


def test_new_files_are_uploaded_and_new_dirs_made_parents_first() -> None:
    local = tree(
        LocalFile("a/b/c.jpg", 5, 1, 11),
        LocalFile("top.txt", 3, 1, 12),
        dirs=("a/b", "a"),
    )

    plan = plan_upload_pass(local, {})

    assert plan.folders == ["a", "a/b"]
    assert [f.rel_path for f in plan.uploads] == ["a/b/c.jpg", "top.txt"]
    assert not plan.revisions and not plan.checks and not plan.forgets


def test_dirs_with_no_file_to_sync_below_them_get_no_folder() -> None:
    # The scan leaves excluded files out: "notes" held only such files.
    local = tree(
        LocalFile("a/b/c/clip.mov", 5, 1, 11),
        dirs=("a", "a/b", "a/b/c", "a/empty", "notes", "notes/deep"),
    )

    plan = plan_upload_pass(local, {"a": synced_dir("a")})

    assert plan.folders == ["a/b", "a/b/c"]


def test_unchanged_file_needs_nothing() -> None:
    plan = plan_upload_pass(
        tree(LocalFile("x.mov", 10, 1, 1)), {"x.mov": synced_file("x.mov")}
    )

    assert plan.idle
    assert plan.unchanged == 1


def test_size_change_is_a_revision_and_time_change_is_a_check() -> None:
    local = tree(LocalFile("grown.mov", 11, 2, 1), LocalFile("touched.mov", 10, 5, 2))
    synced = {
        "grown.mov": synced_file("grown.mov", inode=1),
        "touched.mov": synced_file("touched.mov", inode=2),
    }

    plan = plan_upload_pass(local, synced)

    assert [f.rel_path for f, _ in plan.revisions] == ["grown.mov"]
    assert [f.rel_path for f, _ in plan.checks] == ["touched.mov"]
    assert not plan.uploads


def test_replaced_inode_with_same_size_and_time_is_checked() -> None:
    plan = plan_upload_pass(
        tree(LocalFile("a.jpg", 10, 1, 99)), {"a.jpg": synced_file("a.jpg")}
    )

    assert [f.rel_path for f, _ in plan.checks] == ["a.jpg"]


def test_same_inode_size_and_time_under_a_new_path_is_a_rename() -> None:
    local = tree(LocalFile("renamed.jpg", 10, 1, 7))

    plan = plan_upload_pass(local, {"old.jpg": synced_file("old.jpg", inode=7)})

    assert [(r.entry.rel_path, r.local.rel_path) for r in plan.renames] == [
        ("old.jpg", "renamed.jpg")
    ]
    assert not plan.uploads and not plan.forgets


def test_deleted_file_is_forgotten_by_default_and_removed_when_asked() -> None:
    synced = {"gone.txt": synced_file("gone.txt")}

    kept = plan_upload_pass(tree(), synced)
    removed = plan_upload_pass(tree(), synced, remove_deleted=True)

    assert [e.rel_path for e in kept.forgets] == ["gone.txt"]
    assert not kept.removals
    assert [e.rel_path for e in removed.removals] == ["gone.txt"]
    assert not removed.forgets


def test_paths_in_flight_are_left_to_their_upload() -> None:
    local = tree(LocalFile("busy.mov", 10, 9, 1), LocalFile("new.mov", 1, 1, 2))
    synced = {"busy.mov": synced_file("busy.mov")}

    plan = plan_upload_pass(local, synced, in_flight={"busy.mov", "new.mov"})

    assert plan.idle


def test_vanished_directory_is_forgotten_but_not_deleted_remotely() -> None:
    plan = plan_upload_pass(tree(), {"old": synced_dir("old")}, remove_deleted=True)

    assert [e.rel_path for e in plan.forgets] == ["old"]
    assert not plan.removals


def test_known_directory_is_not_made_again() -> None:
    plan = plan_upload_pass(tree(dirs=("a",)), {"a": synced_dir("a")})

    assert plan.folders == []


def test_a_path_that_changed_kind_is_settled_first_and_made_again() -> None:
    local = tree(
        LocalFile("was-dir", 4, 1, 50),
        LocalFile("was-file/in.txt", 4, 1, 51),
        dirs=("was-file",),
    )
    synced = {"was-dir": synced_dir("was-dir"), "was-file": synced_file("was-file")}

    plan = plan_upload_pass(local, synced)

    assert sorted(e.rel_path for e in plan.replaced) == ["was-dir", "was-file"]
    assert plan.folders == ["was-file"]
    assert [f.rel_path for f in plan.uploads] == ["was-dir", "was-file/in.txt"]
    assert plan.forgets == [] and plan.removals == []


def test_a_move_stopped_while_in_flight_keeps_the_old_entry_until_it_is_done() -> None:
    local = tree(LocalFile("b/clip.mov", 10, 1, 7))
    synced = {"a/clip.mov": synced_file("a/clip.mov", inode=7)}

    plan = plan_upload_pass(
        local, synced, in_flight={"b/clip.mov"}, remove_deleted=True
    )

    assert not plan.forgets and not plan.removals and not plan.moved


def test_a_move_stopped_after_its_upload_removes_the_old_asset() -> None:
    local = tree(LocalFile("b/clip.mov", 10, 1, 7))
    old = synced_file("a/clip.mov", inode=7)
    new = replace(synced_file("b/clip.mov", inode=7), asset_id=900)
    synced = {"a/clip.mov": old, "b/clip.mov": new}

    plan = plan_upload_pass(local, synced)

    assert [(r.entry.rel_path, r.local.rel_path) for r in plan.moved] == [
        ("a/clip.mov", "b/clip.mov")
    ]
    assert not plan.forgets


def test_a_deleted_file_whose_twin_has_other_content_is_a_plain_delete() -> None:
    local = tree(LocalFile("b/clip.mov", 10, 1, 7))
    old = synced_file("a/clip.mov", inode=7)
    other = replace(synced_file("b/clip.mov", inode=7), asset_id=900, checksum="1" * 32)
    synced = {"a/clip.mov": old, "b/clip.mov": other}

    plan = plan_upload_pass(local, synced)

    assert not plan.moved
    assert [e.rel_path for e in plan.forgets] == ["a/clip.mov"]


def test_files_below_a_folder_that_could_not_be_listed_are_not_gone() -> None:
    local = tree(LocalFile("ok.txt", 10, 1, 1), dirs=("locked",))
    local.unseen.add("locked")
    synced = {
        "ok.txt": synced_file("ok.txt", inode=1),
        "locked": synced_dir("locked"),
        "locked/in.txt": synced_file("locked/in.txt", inode=2),
        "locked/deep": synced_dir("locked/deep"),
    }

    plan = plan_upload_pass(local, synced, remove_deleted=True)

    assert plan.idle


def test_nothing_is_gone_when_the_root_could_not_be_listed() -> None:
    local = tree()
    local.unseen.add("")

    plan = plan_upload_pass(local, {"a.txt": synced_file("a.txt")}, remove_deleted=True)

    assert plan.idle


def test_a_file_that_vanished_during_the_scan_is_kept_or_renamed() -> None:
    # "a.mov" went while the scan looked; "b.mov" too, and is back as "c.mov".
    local = tree(LocalFile("c.mov", 10, 1, 2))
    local.unseen.update({"a.mov", "b.mov"})
    local.vanished.update({"a.mov", "b.mov"})
    synced = {
        "a.mov": synced_file("a.mov", inode=1),
        "b.mov": synced_file("b.mov", inode=2),
    }

    plan = plan_upload_pass(local, synced, remove_deleted=True)

    assert [(r.entry.rel_path, r.local.rel_path) for r in plan.renames] == [
        ("b.mov", "c.mov")
    ]
    assert not plan.uploads and not plan.removals and not plan.forgets


def test_a_file_below_an_unlisted_folder_is_no_rename_source() -> None:
    # Its twin elsewhere (a hard link) is a new file, not the file moved.
    local = tree(LocalFile("twin.mov", 10, 1, 2), dirs=("locked",))
    local.unseen.add("locked")
    synced = {"locked/a.mov": synced_file("locked/a.mov", inode=2)}

    plan = plan_upload_pass(local, synced, remove_deleted=True)

    assert [f.rel_path for f in plan.uploads] == ["twin.mov"]
    assert not plan.renames and not plan.removals


@pytest.mark.parametrize("remove_deleted", [False, True])
def test_only_files_a_second_look_finds_gone_too_stay_deleted(
    remove_deleted: bool,
) -> None:
    # The first scan missed "a.mov" (renamed twice while it ran); "gone.mov" is gone.
    synced = {
        "a.mov": synced_file("a.mov", inode=1),
        "gone.mov": synced_file("gone.mov", inode=2),
        "back.mov": synced_file("back.mov", inode=3),
    }
    plan = plan_upload_pass(tree(), synced, remove_deleted=remove_deleted)
    second_look = tree(LocalFile("b.mov", 10, 1, 1), LocalFile("back.mov", 10, 1, 3))

    held = confirm_deleted(plan, tree(), second_look)

    deleted = plan.removals if remove_deleted else plan.forgets
    assert [e.rel_path for e in deleted] == ["gone.mov"]
    assert sorted(e.rel_path for e in held) == ["a.mov", "back.mov"]
    assert not (plan.forgets if remove_deleted else plan.removals)


def test_a_new_file_with_the_identity_of_a_file_still_seen_is_marked_a_twin() -> None:
    local = tree(LocalFile("a.mov", 10, 1, 7), LocalFile("z.mov", 10, 1, 7))
    synced = {"a.mov": synced_file("a.mov", inode=7)}

    plan = plan_upload_pass(local, synced)

    assert [f.rel_path for f in plan.uploads] == ["z.mov"]
    assert {path: e.rel_path for path, e in plan.twins.items()} == {"z.mov": "a.mov"}


def test_a_file_the_first_scan_saw_does_not_hold_a_deletion_back() -> None:
    # b.mov took a.mov's inode (same size and mtime); the plan read it: no rename.
    synced = {"a.mov": synced_file("a.mov", inode=1)}
    first_look = tree(LocalFile("b.mov", 10, 1, 1))
    plan = plan_upload_pass(first_look, synced)
    plan.uploads, plan.renames = [first_look.files["b.mov"]], []  # as read
    plan.forgets = [synced["a.mov"]]

    held = confirm_deleted(plan, first_look, first_look)

    assert held == [] and [e.rel_path for e in plan.forgets] == ["a.mov"]

"""The pull planner: remote tree + synced tree + disk in, operations out."""

from __future__ import annotations

from dataclasses import replace

from syncagent.config import DEFAULT_EXCLUDES
from syncagent.engine.filters import PathFilter
from syncagent.engine.local_view import LocalView
from syncagent.engine.pull_ops import MakeDir, MoveDir, PullOptions, PullPlan
from syncagent.engine.pull_planner import plan_pull
from syncagent.engine.remote_tree import RemoteAsset, RemoteFolder, RemoteTree
from syncagent.engine.scanner import LocalFile
from syncagent.ledger.records import EntryRecord

ROOT = 1001
RULES = PathFilter(["*"], DEFAULT_EXCLUDES)


def tree(*folders: tuple[int, int, str], assets: list[RemoteAsset]) -> RemoteTree:
    """A remote tree: the root plus (folder_id, parent_id, name) folders."""
    remote = RemoteTree(ROOT)
    remote.folders[ROOT] = RemoteFolder(ROOT, None, "Root")
    for folder_id, parent_id, name in folders:
        remote.folders[folder_id] = RemoteFolder(folder_id, parent_id, name)
    remote.assets = assets
    return remote


def asset(
    asset_id: int,
    name: str,
    checksum: str = "c1",
    folder_id: int = ROOT,
    *,
    status: str = "complete",
    archived: bool = False,
) -> RemoteAsset:
    return RemoteAsset(
        asset_id, folder_id, name, checksum, 10, status=status, archived=archived
    )


def entry(
    rel_path: str,
    asset_id: int,
    checksum: str = "c1",
    folder_id: int = ROOT,
    **kw: object,
) -> EntryRecord:
    fields: dict[str, object] = {
        "rel_path": rel_path,
        "kind": "file",
        "folder_id": folder_id,
        "asset_id": asset_id,
        "remote_name": rel_path.rpartition("/")[2],
        "size": 10,
        "mtime_ns": 1000,
        "inode": asset_id,
        "checksum": checksum,
        "origin": "remote",
    }
    fields.update(kw)
    return EntryRecord(**fields)  # type: ignore[arg-type]


def dir_entry(rel_path: str, folder_id: int, name: str | None = None) -> EntryRecord:
    return EntryRecord(
        rel_path,
        "dir",
        folder_id,
        None,
        name or rel_path.rpartition("/")[2],
        None,
        None,
        None,
        None,
    )


def disk(
    *files: EntryRecord | tuple[str, int], dirs: tuple[str, ...] = ()
) -> LocalView:
    """A local view holding files exactly as entries recorded them, or (path, inode)."""
    view = LocalView(dirs=set(dirs))
    for item in files:
        if isinstance(item, EntryRecord):
            view.files[item.rel_path] = LocalFile(
                item.rel_path, item.size or 0, item.mtime_ns or 0, item.inode or 0
            )
        else:
            path, inode = item
            view.files[path] = LocalFile(path, 99, 5, inode)
    return view


def plan(
    remote: RemoteTree,
    entries: list[EntryRecord] | None = None,
    local: LocalView | None = None,
    **kw: object,
) -> PullPlan:
    options = kw.pop("options", PullOptions())
    return plan_pull(
        remote,
        {e.rel_path: e for e in entries or []},
        local or LocalView(),
        rules=RULES,
        options=options,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def fetched(result: PullPlan) -> dict[str, tuple[str, int]]:
    return {f.rel_path: (f.kind, f.asset.asset_id) for f in result.fetches}


# -- new things --------------------------------------------------------------------


def test_new_assets_and_folders_are_made_and_fetched() -> None:
    remote = tree(
        (2001, ROOT, "Shoot"),
        (2002, 2001, "Day 1"),
        assets=[asset(1, "a.txt"), asset(2, "clip.mov", folder_id=2002)],
    )

    result = plan(remote)

    assert result.dirs == [
        MakeDir("Shoot", remote.folders[2001]),
        MakeDir("Shoot/Day 1", remote.folders[2002]),
    ]
    assert fetched(result) == {"a.txt": ("new", 1), "Shoot/Day 1/clip.mov": ("new", 2)}
    assert result.placements[(2002, 2)][0] == "Shoot/Day 1/clip.mov"


def test_unfinished_in_flight_and_excluded_assets_are_left_alone() -> None:
    remote = tree(
        assets=[
            asset(1, "uploading.mov", status="created", checksum=""),
            asset(2, "ours.mov"),
            asset(3, "editor.tmp"),
            asset(4, ".hidden"),
        ]
    )

    result = plan(remote, in_flight={2})

    assert result.fetches == [] and result.placements == {}


def test_an_asset_not_placed_yet_takes_no_name_from_one_placed_now() -> None:
    remote = tree(
        assets=[
            asset(1, "report.txt", status="created", checksum=""),  # still uploading
            asset(2, "report.txt"),
            asset(3, "notes.txt"),
            asset(4, "notes.txt"),
        ]
    )

    result = plan(remote, in_flight={3})  # 3: ours, its upload in flight

    assert fetched(result) == {"report.txt": ("new", 2), "notes.txt": ("new", 4)}


def test_hostile_names_land_inside_the_root_and_none_is_lost() -> None:
    names = ["../../escape.txt", "a/b.txt", "CON.txt", "x\0y", "Photo.JPG", "photo.jpg"]
    remote = tree(assets=[asset(i, n) for i, n in enumerate(names, start=1)])

    paths = sorted(plan(remote).placements[(ROOT, i)][0] for i in range(1, 7))

    assert paths == sorted(
        ["escape.txt", "a_b.txt", "CON_.txt", "x_y", "Photo.JPG", "photo (asset 6).jpg"]
    )


def test_a_local_file_in_the_way_is_never_overwritten() -> None:
    remote = tree((2001, ROOT, "notes"), assets=[asset(1, "report.pdf")])
    local = disk(("report.pdf", 77), ("notes", 78))

    result = plan(remote, [], local)

    assert fetched(result) == {"report (asset 1).pdf": ("new", 1)}
    assert result.dirs == [MakeDir("notes (folder 2001)", remote.folders[2001])]


def test_two_way_a_new_file_and_an_asset_of_its_name_are_both_kept_and_noted() -> None:
    remote = tree(assets=[asset(1, "both.txt", "remote-md5")])
    local = disk(("both.txt", 77))
    hashed = {"both.txt": "local-md5"}

    two_way = plan(
        remote, [], local, local_md5=hashed, options=PullOptions(two_way=True)
    )
    mirror = plan(remote, [], local, local_md5=hashed)

    for result in (two_way, mirror):
        assert fetched(result) == {"both (asset 1).txt": ("new", 1)}
    [notice] = two_way.notices
    assert notice.subject == "both.txt"
    assert "Compass has another file of this name (asset 1)" in notice.reason
    assert mirror.notices == []  # a mirror sends nothing up


def test_a_local_file_holding_the_same_bytes_is_adopted_not_fetched() -> None:
    remote = tree(assets=[asset(1, "same.bin", "abc"), asset(2, "other.bin", "def")])
    local = LocalView()
    for name, inode in (("same.bin", 5), ("other.bin", 6)):
        local.files[name] = LocalFile(name, 10, 7, inode)

    first = plan(remote, [], local)
    second = plan(remote, [], local, local_md5={"same.bin": "abc", "other.bin": "xyz"})

    assert sorted(first.needs_hash) == ["other.bin", "same.bin"]
    [record] = second.records
    assert (record.entry.rel_path, record.entry.asset_id) == ("same.bin", 1)
    assert (record.entry.checksum, record.entry.inode) == ("abc", 5)
    assert fetched(second) == {"other (asset 2).bin": ("new", 2)}


def test_a_new_folder_adopts_a_local_directory_of_that_name() -> None:
    remote = tree((2001, ROOT, "Shoot"), assets=[asset(1, "a.jpg", folder_id=2001)])
    local = disk(("Shoot/b.jpg", 5), dirs=("Shoot",))

    result = plan(remote, [], local)

    assert result.dirs == [MakeDir("Shoot", remote.folders[2001])]
    assert fetched(result) == {"Shoot/a.jpg": ("new", 1)}


def test_names_given_once_stay_when_a_clashing_asset_arrives() -> None:
    synced = [entry("photo.jpg", 9)]
    remote = tree(assets=[asset(3, "Photo.jpg"), asset(9, "photo.jpg")])

    result = plan(remote, synced, disk(*synced))

    assert fetched(result) == {"Photo (asset 3).jpg": ("new", 3)}
    assert result.moves == [] and result.unchanged == 1


def test_case_twins_synced_from_a_case_sensitive_disk_keep_their_names() -> None:
    synced = [entry("Photo.jpg", 1), entry("photo.jpg", 2)]
    remote = tree(assets=[asset(1, "Photo.jpg"), asset(2, "photo.jpg")])

    result = plan(remote, synced, disk(*synced))

    assert result.moves == [] and result.fetches == [] and result.unchanged == 2


# -- changes to synced files ------------------------------------------------------


def test_nothing_changed_means_nothing_to_do() -> None:
    synced = [dir_entry("Shoot", 2001), entry("Shoot/a.jpg", 1, folder_id=2001)]
    remote = tree((2001, ROOT, "Shoot"), assets=[asset(1, "a.jpg", folder_id=2001)])

    result = plan(remote, synced, disk(synced[1], dirs=("Shoot",)))

    assert result.dirs == [] and result.fetches == [] and result.moves == []
    assert result.records == [] and result.trash == [] and result.forgets == []
    assert result.unchanged == 1


def test_a_new_revision_replaces_the_unchanged_local_file() -> None:
    synced = [entry("a.jpg", 1, "old")]
    remote = tree(assets=[asset(1, "a.jpg", "new")])

    result = plan(remote, synced, disk(*synced))

    [fetch] = result.fetches
    assert (fetch.rel_path, fetch.kind, fetch.expect) == (
        "a.jpg",
        "revision",
        synced[0],
    )


def test_a_remote_rename_renames_the_local_file() -> None:
    synced = [entry("a.jpg", 1)]
    remote = tree(assets=[asset(1, "b.jpg")])

    result = plan(remote, synced, disk(*synced))

    [move] = result.moves
    assert move.old_rel_path == "a.jpg"
    assert move.entry == replace(synced[0], rel_path="b.jpg", remote_name="b.jpg")
    assert result.fetches == []


def test_a_rename_to_a_left_out_name_keeps_a_two_way_file_bound() -> None:
    synced = [entry("draft.txt", 1)]
    remote = tree(assets=[asset(1, ".draft.txt")])  # hidden by whoever renamed it

    two_way = plan(remote, synced, disk(*synced), options=PullOptions(two_way=True))
    mirror = plan(remote, synced, disk(*synced))

    # Forgotten in a two-way mapping, the file would go up as a second asset.
    assert (two_way.forgets, two_way.moves, two_way.fetches) == ([], [], [])
    [notice] = two_way.notices
    assert notice.subject == "draft.txt"
    assert "renamed in Compass to '.draft.txt', which this mapping leaves out" in (
        notice.reason
    )
    assert mirror.forgets == synced


def test_a_rename_that_only_changes_case_keeps_its_slot() -> None:
    synced = [entry("photo.jpg", 1)]
    remote = tree(assets=[asset(1, "PHOTO.jpg")])

    [move] = plan(remote, synced, disk(*synced)).moves

    assert (move.old_rel_path, move.entry.rel_path) == ("photo.jpg", "PHOTO.jpg")


def test_a_rename_with_a_new_revision_moves_then_replaces() -> None:
    synced = [entry("a.jpg", 1, "old")]
    remote = tree(assets=[asset(1, "b.jpg", "new")])

    result = plan(remote, synced, disk(*synced))

    assert [(m.old_rel_path, m.entry.rel_path) for m in result.moves] == [
        ("a.jpg", "b.jpg")
    ]
    assert fetched(result) == {"b.jpg": ("revision", 1)}


def test_an_asset_moved_to_another_folder_is_moved_not_fetched_again() -> None:
    synced = [
        dir_entry("A", 2001),
        dir_entry("B", 2002),
        entry("A/a.jpg", 1, folder_id=2001),
    ]
    remote = tree(
        (2001, ROOT, "A"),
        (2002, ROOT, "B"),
        assets=[asset(1, "a.jpg", folder_id=2002)],
    )

    result = plan(remote, synced, disk(synced[2], dirs=("A", "B")))

    [move] = result.moves
    assert (move.old_rel_path, move.entry.rel_path) == ("A/a.jpg", "B/a.jpg")
    assert move.entry.folder_id == 2002
    assert result.trash == [] and result.fetches == []


def test_a_renamed_folder_moves_its_directory_and_keeps_its_files() -> None:
    synced = [
        dir_entry("Old", 2001),
        entry("Old/a.jpg", 1, folder_id=2001),
        entry("Old/b.jpg", 2, folder_id=2001),
    ]
    remote = tree(
        (2001, ROOT, "New"),
        assets=[asset(1, "a.jpg", folder_id=2001), asset(2, "c.jpg", folder_id=2001)],
    )

    result = plan(remote, synced, disk(synced[1], synced[2], dirs=("Old",)))

    assert result.dirs == [MoveDir("Old", "New", remote.folders[2001])]
    assert [(m.old_rel_path, m.entry.rel_path) for m in result.moves] == [
        ("New/b.jpg", "New/c.jpg")
    ]
    assert result.unchanged == 1


def test_a_file_removed_in_compass_goes_to_the_trash() -> None:
    synced = [entry("a.jpg", 1), entry("b.jpg", 2)]
    remote = tree(assets=[asset(2, "b.jpg")])

    result = plan(remote, synced, disk(*synced))

    assert result.trash == [synced[0]] and result.forgets == []


def test_with_keep_a_removed_file_is_only_forgotten() -> None:
    synced = [entry("a.jpg", 1)]

    result = plan(
        tree(assets=[]),
        synced,
        disk(*synced),
        options=PullOptions(trash_removed=False),
    )

    assert result.trash == [] and result.forgets == synced


def test_a_removed_file_changed_here_is_kept_and_reported() -> None:
    synced = [entry("a.jpg", 1)]

    result = plan(tree(assets=[]), synced, disk(("a.jpg", 1)))

    assert result.trash == [] and result.forgets == synced
    assert [n.subject for n in result.notices] == ["a.jpg"]


def test_the_name_of_a_trashed_file_is_free_for_a_new_asset() -> None:
    synced = [entry("a.jpg", 1)]
    remote = tree(assets=[asset(2, "a.jpg", "c2")])

    result = plan(remote, synced, disk(*synced))

    assert result.trash == synced
    assert fetched(result) == {"a.jpg": ("new", 2)}


def test_a_removed_folder_is_removed_after_its_files_are_trashed() -> None:
    synced = [dir_entry("A", 2001), entry("A/a.jpg", 1, folder_id=2001)]

    result = plan(tree(assets=[]), synced, disk(synced[1], dirs=("A",)))

    assert result.trash == [synced[1]] and result.dir_removals == [synced[0]]


# -- both sides changed -----------------------------------------------------------


def test_both_changed_asks_for_a_hash_then_keeps_both() -> None:
    synced = [entry("a.jpg", 1, "old")]
    remote = tree(assets=[asset(1, "a.jpg", "new")])
    local = disk(("a.jpg", 1))

    first = plan(remote, synced, local)
    second = plan(remote, synced, local, local_md5={"a.jpg": "mine"})

    assert first.needs_hash == ["a.jpg"] and first.fetches == []
    [conflict] = second.conflicts
    assert conflict.rel_path == "a.jpg" and conflict.asset.checksum == "new"
    assert conflict.entry.checksum == "new"
    assert conflict.entry.size == synced[0].size  # the local change stays visible
    assert second.fetches == []


def test_a_touched_file_is_replaced_by_the_new_revision() -> None:
    synced = [entry("a.jpg", 1, "old")]
    remote = tree(assets=[asset(1, "a.jpg", "new")])

    result = plan(remote, synced, disk(("a.jpg", 1)), local_md5={"a.jpg": "old"})

    assert fetched(result) == {"a.jpg": ("revision", 1)} and result.conflicts == []


def test_the_same_change_on_both_sides_is_just_recorded() -> None:
    synced = [entry("a.jpg", 1, "old")]
    remote = tree(assets=[asset(1, "a.jpg", "new")])

    result = plan(remote, synced, disk(("a.jpg", 1)), local_md5={"a.jpg": "new"})

    [record] = result.records
    assert record.entry.checksum == "new" and record.entry.size == 99
    assert result.fetches == [] and result.conflicts == []


def test_a_local_change_alone_is_left_for_the_upload_pass() -> None:
    synced = [entry("a.jpg", 1)]

    result = plan(tree(assets=[asset(1, "a.jpg")]), synced, disk(("a.jpg", 1)))

    assert result.fetches == [] and result.conflicts == [] and result.needs_hash == []


# -- local deletions -------------------------------------------------------------


def test_a_mirror_puts_back_a_file_deleted_here() -> None:
    synced = [entry("a.jpg", 1)]

    result = plan(tree(assets=[asset(1, "a.jpg")]), synced, disk())

    assert fetched(result) == {"a.jpg": ("restore", 1)}


def test_two_way_keeps_a_local_delete_and_withholds_the_asset() -> None:
    synced = [entry("a.jpg", 1)]
    remote = tree(assets=[asset(1, "a.jpg")])

    kept = plan(remote, synced, disk(), options=PullOptions(two_way=True))
    removing = plan(
        remote,
        synced,
        disk(),
        options=PullOptions(two_way=True, remove_local_deletes=True),
    )

    assert kept.withholds == synced and kept.fetches == []
    assert removing.withholds == [] and removing.fetches == []


def test_a_withheld_asset_returns_only_with_a_new_version() -> None:
    remote_same = tree(assets=[asset(1, "a.jpg", "c1")])
    remote_new = tree(assets=[asset(1, "a.jpg", "c2")])
    withheld = {(ROOT, 1): "c1"}

    same = plan(remote_same, withheld=withheld, options=PullOptions(two_way=True))
    new = plan(remote_new, withheld=withheld, options=PullOptions(two_way=True))
    gone = plan(tree(assets=[]), withheld=withheld)

    assert same.fetches == [] and same.released == []
    assert fetched(new) == {"a.jpg": ("new", 1)} and new.released == [(ROOT, 1)]
    assert gone.released == [(ROOT, 1)]


def test_two_way_keeps_a_deleted_directory_deleted() -> None:
    synced = [dir_entry("A", 2001), entry("A/a.jpg", 1, folder_id=2001)]
    remote = tree(
        (2001, ROOT, "A"),
        assets=[asset(1, "a.jpg", folder_id=2001), asset(2, "new.jpg", folder_id=2001)],
    )

    result = plan(remote, synced, disk(), options=PullOptions(two_way=True))

    assert result.withheld_dirs == [(remote.folders[2001], "A")]
    assert result.withholds == [synced[1]]
    assert result.dirs == [] and result.fetches == []


# -- archive, permissions, proxies ---------------------------------------------


def test_archived_assets_are_reported_or_restored() -> None:
    remote = tree(assets=[asset(1, "a.jpg", archived=True)])

    skipped = plan(remote)
    restoring = plan(remote, options=PullOptions(restore_archived=True))

    assert skipped.fetches == [] and skipped.restores == []
    assert "archived" in skipped.notices[0].reason
    assert restoring.fetches == [] and [a.asset_id for a in restoring.restores] == [1]


def test_a_folder_without_download_permission_is_reported() -> None:
    remote = tree((2001, ROOT, "Locked"), assets=[asset(1, "a.jpg", folder_id=2001)])
    remote.folders[2001] = replace(remote.folders[2001], downloadable=False)

    result = plan(remote)

    assert result.fetches == []
    assert result.notices[0].subject == "Locked/a.jpg"


def test_proxies_only_places_assets_without_touching_the_disk() -> None:
    synced = [entry("old.jpg", 7)]
    remote = tree((2001, ROOT, "Shoot"), assets=[asset(1, "a.jpg", folder_id=2001)])

    result = plan(remote, synced, disk(), options=PullOptions(proxies_only=True))

    assert result.placements == {(2001, 1): ("Shoot/a.jpg", remote.assets[0])}
    assert result.dirs == [] and result.fetches == [] and result.trash == []
    assert result.forgets == []


def test_a_withheld_folder_stays_away_until_its_directory_is_made_again() -> None:
    remote = tree((2001, ROOT, "A"), assets=[asset(1, "a.jpg", folder_id=2001)])
    withheld = {(2001, 0): None, (2001, 1): "c1"}
    options = PullOptions(two_way=True)

    away = plan(remote, [], disk(), withheld=withheld, options=options)
    back = plan(remote, [], disk(dirs=("A",)), withheld=withheld, options=options)

    assert away.dirs == [] and away.fetches == [] and away.released == []
    assert back.dirs == [MakeDir("A", remote.folders[2001])]
    assert fetched(back) == {"A/a.jpg": ("new", 1)}
    assert sorted(back.released) == [(2001, 0), (2001, 1)]

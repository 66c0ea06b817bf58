"""The names a pull gives: chains of renames, tags that go once a name is free, and
files recognised under the names a pull gives (a lost ledger, a mirror seeded by hand).
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from syncagent.engine.local_view import LocalView
from syncagent.engine.pull_ops import PullPlan
from syncagent.engine.scanner import LocalFile
from syncagent.ledger.records import EntryRecord
from tests.engine.test_pull_planner import asset, disk, entry, fetched, plan, tree


def moves(result: PullPlan) -> list[tuple[str, str]]:
    return [(m.old_rel_path, m.entry.rel_path) for m in result.moves]


def applied(result: PullPlan, synced: list[EntryRecord]) -> list[EntryRecord]:
    """The ledger once a plan's moves are carried out."""
    moved = {m.old_rel_path: m.entry for m in result.moves}
    return [moved.get(e.rel_path, e) for e in synced]


def seeded(*files: tuple[str, int]) -> LocalView:
    """A disk holding unknown files of the test assets' size (10 bytes)."""
    view = LocalView()
    for name, inode in files:
        view.files[name] = LocalFile(name, 10, 7, inode)
    return view


# -- renames in Compass ------------------------------------------------------------


def test_a_chain_of_renames_frees_the_name_before_it_is_taken() -> None:
    synced = [entry("final.mov", 54), entry("final_v2.mov", 55)]
    remote = tree(assets=[asset(54, "final_old.mov"), asset(55, "final.mov")])

    result = plan(remote, synced, disk(*synced))

    assert moves(result) == [
        ("final.mov", "final_old.mov"),
        ("final_v2.mov", "final.mov"),
    ]


def test_a_chain_named_against_the_asset_order_is_moved_in_the_order_it_needs() -> None:
    synced = [entry("final_v2.mov", 54), entry("final.mov", 55)]
    remote = tree(assets=[asset(54, "final.mov"), asset(55, "final_old.mov")])

    result = plan(remote, synced, disk(*synced))

    assert moves(result) == [
        ("final.mov", "final_old.mov"),
        ("final_v2.mov", "final.mov"),
    ]


def test_a_swap_keeps_one_tag_for_a_pull_then_both_names_are_plain() -> None:
    synced = [entry("what_.txt", 33), entry("名前.txt", 40)]
    remote = tree(assets=[asset(33, "名前.txt"), asset(40, "what?.txt")])

    first = plan(remote, synced, disk(*synced))

    assert moves(first) == [
        ("what_.txt", "名前 (asset 33).txt"),
        ("名前.txt", "what_.txt"),
    ]
    after = applied(first, synced)
    second = plan(remote, after, disk(*after))

    assert moves(second) == [("名前 (asset 33).txt", "名前.txt")]
    settled = applied(second, after)
    assert moves(plan(remote, settled, disk(*settled))) == []


def test_a_new_asset_takes_a_name_a_renamed_file_leaves() -> None:
    synced = [entry("cut.mov", 1)]
    remote = tree(assets=[asset(1, "cut old.mov"), asset(2, "cut.mov", "c2")])

    result = plan(remote, synced, disk(*synced))

    assert moves(result) == [("cut.mov", "cut old.mov")]
    assert fetched(result) == {"cut.mov": ("new", 2)}


def test_a_name_left_by_a_file_another_file_folds_to_stays_taken() -> None:
    synced = [entry("final.mov", 54), entry("final_v2.mov", 55)]
    remote = tree(assets=[asset(54, "final_old.mov"), asset(55, "final.mov")])
    local = disk(*synced, ("FINAL.MOV", 99))

    result = plan(remote, synced, local)

    assert moves(result) == [
        ("final.mov", "final_old.mov"),
        ("final_v2.mov", "final (asset 55).mov"),
    ]


# -- tags that are no longer needed ----------------------------------------------------


def test_a_tag_goes_once_the_name_it_avoided_is_free() -> None:
    synced = [entry("photo (asset 7).jpg", 7, remote_name="photo.jpg")]
    remote = tree(assets=[asset(7, "photo.jpg")])

    result = plan(remote, synced, disk(*synced))

    assert moves(result) == [("photo (asset 7).jpg", "photo.jpg")]


def test_a_tag_stays_while_the_name_is_taken() -> None:
    synced = [entry("photo (asset 7).jpg", 7, remote_name="photo.jpg")]
    remote = tree(assets=[asset(7, "photo.jpg")])

    result = plan(remote, synced, disk(*synced, ("photo.jpg", 70)))

    assert moves(result) == [] and result.unchanged == 1


def test_a_name_that_only_looks_tagged_is_left_alone() -> None:
    synced = [entry("a (asset 8).jpg", 7, remote_name="a (asset 8).jpg")]
    remote = tree(assets=[asset(7, "a (asset 8).jpg")])

    assert moves(plan(remote, synced, disk(*synced))) == []


# -- files recognised without a ledger ------------------------------------------------


def test_a_lost_ledger_recognises_the_names_the_mirror_gave_to_collisions() -> None:
    remote = tree(
        (2001, 1001, "thing"),
        assets=[
            asset(146, "Photo.JPG", "big"),
            asset(147, "photo.jpg", "small"),
            asset(141, "thing", "th"),
        ],
    )
    local = seeded(
        ("Photo.JPG", 1), ("photo (asset 147).jpg", 2), ("thing (asset 141)", 3)
    )
    local.dirs.add("thing")
    md5 = {"Photo.JPG": "big", "photo (asset 147).jpg": "small"}
    md5["thing (asset 141)"] = "th"

    first = plan(remote, [], local)
    second = plan(remote, [], local, local_md5=md5)

    assert sorted(first.needs_hash) == sorted(md5)
    recorded = {r.entry.rel_path: r.entry.asset_id for r in second.records}
    assert recorded == {
        "Photo.JPG": 146,
        "photo (asset 147).jpg": 147,
        "thing (asset 141)": 141,
    }
    assert second.fetches == []
    assert [d.rel_path for d in second.dirs] == ["thing"]


def test_a_file_with_other_bytes_under_a_tagged_name_is_not_taken() -> None:
    remote = tree(assets=[asset(146, "Photo.JPG", "big"), asset(147, "photo.jpg")])
    local = seeded(("Photo.JPG", 1), ("photo (asset 147).jpg", 2))
    md5 = {"Photo.JPG": "big", "photo (asset 147).jpg": "something else"}

    result = plan(remote, [], local, local_md5=md5)

    assert fetched(result) == {"photo (asset 147 2).jpg": ("new", 147)}


def test_a_seeded_name_in_decomposed_unicode_is_recognised() -> None:
    nfd = unicodedata.normalize("NFD", "café.txt")
    remote = tree(assets=[asset(150, "café.txt", "cafe")])
    local = seeded((nfd, 1))

    result = plan(remote, [], local, local_md5={nfd: "cafe"})

    [record] = result.records
    assert record.entry.rel_path == nfd and record.entry.asset_id == 150
    assert result.fetches == []
    again = plan(remote, [record.entry], local)
    assert again.moves == [] and again.fetches == [] and again.unchanged == 1


def test_a_seeded_name_in_another_case_is_not_taken_for_the_asset() -> None:
    remote = tree(assets=[asset(5, "report.txt", "r")])
    local = seeded(("REPORT.TXT", 1))

    result = plan(remote, [], local, local_md5={"REPORT.TXT": "r"})

    assert result.records == []
    assert fetched(result) == {"report (asset 5).txt": ("new", 5)}


def test_two_assets_never_claim_one_local_file() -> None:
    remote = tree(assets=[asset(1, "a.txt", "same"), asset(2, "a.txt", "same")])
    local = seeded(("a.txt", 1))

    result = plan(remote, [], local, local_md5={"a.txt": "same"})

    assert [r.entry.asset_id for r in result.records] == [1]
    assert fetched(result) == {"a (asset 2).txt": ("new", 2)}
    assert replace(result.records[0].entry).rel_path == "a.txt"


def test_two_local_names_that_differ_only_in_normal_form_are_both_recognised() -> None:
    nfc, nfd = "café.txt", unicodedata.normalize("NFD", "café.txt")
    remote = tree(assets=[asset(217, nfc, "composed"), asset(218, nfd, "decomposed")])
    local = seeded((nfc, 1), (nfd, 2))

    result = plan(remote, [], local, local_md5={nfc: "composed", nfd: "decomposed"})

    recorded = {r.entry.asset_id: r.entry.rel_path for r in result.records}
    assert recorded == {217: nfc, 218: nfd}
    assert result.fetches == []

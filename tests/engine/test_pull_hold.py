"""Holding back what lies below a folder that failed: the rest of the plan goes on."""

from __future__ import annotations

from syncagent.engine.local_view import LocalView
from syncagent.engine.pull_hold import blocker, hold_back
from tests.engine.test_pull_planner import ROOT, asset, disk, entry, plan, tree


def test_only_the_paths_below_a_blocked_folder_are_held_back() -> None:
    synced = [entry("top.txt", 1), entry("Sub/a.txt", 2, folder_id=2001)]
    remote = tree(
        (2001, ROOT, "Sub"),
        (2002, 2001, "Deeper"),
        (2003, ROOT, "Subway"),
        assets=[
            asset(1, "top.txt", checksum="c2"),
            asset(2, "a.txt", checksum="c2", folder_id=2001),
            asset(3, "b.txt", folder_id=2002),
            asset(4, "c.txt", folder_id=2003),
            asset(5, "new.txt"),
        ],
    )
    full = plan(remote, synced, disk(*synced))
    assert [op.rel_path for op in full.dirs] == ["Sub", "Sub/Deeper", "Subway"]

    kept, held = hold_back(full, ["Sub", "Sub/Deeper"])

    assert sorted(f.rel_path for f in kept.fetches) == [
        "Subway/c.txt",
        "new.txt",
        "top.txt",
    ]
    assert held.counts == {"Sub": 2}
    assert kept.dirs == full.dirs  # the pass skips folder operations itself


def test_a_move_into_or_out_of_a_blocked_folder_is_held_back() -> None:
    synced = [entry("Sub/a.txt", 2, folder_id=2001), entry("b.txt", 3)]
    remote = tree(
        (2001, ROOT, "Sub"),
        assets=[asset(2, "a.txt"), asset(3, "b.txt", folder_id=2001)],
    )
    full = plan(remote, synced, disk(*synced, dirs=("Sub",)))
    assert sorted((m.old_rel_path, m.entry.rel_path) for m in full.moves) == [
        ("Sub/a.txt", "a.txt"),
        ("b.txt", "Sub/b.txt"),
    ]

    kept, held = hold_back(full, ["Sub"])

    assert kept.moves == []
    assert held.counts == {"Sub": 2}


def test_nothing_blocked_keeps_the_plan_and_names_are_not_prefixes() -> None:
    remote = tree(assets=[asset(1, "a.txt")])
    full = plan(remote, [], LocalView())
    kept, held = hold_back(full, [])
    assert kept is full and held.counts == {}
    assert blocker("Subway/x", ["Sub"]) is None
    assert blocker("Sub/x", ["Sub"]) == "Sub"
    assert blocker(None, ["Sub"]) is None

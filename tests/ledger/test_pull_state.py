"""The ledger's pull state: moved directories, withheld assets, placed proxies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from syncagent.engine.placements import settle_placements
from syncagent.engine.safe_root import SafeRoot
from syncagent.ledger import EntryRecord, Ledger
from syncagent.ledger.records import ProxyFileRecord


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.close()


def file_entry(rel_path: str, asset_id: int, folder_id: int = 1001) -> EntryRecord:
    return EntryRecord(
        rel_path, "file", folder_id, asset_id, rel_path, 1, 2, 3, "c" * 32
    )


def test_moving_a_directory_rewrites_exactly_what_is_below_it(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    for rel_path, asset_id in [
        ("Old_1/a.jpg", 1),
        ("Old_1/sub/b.jpg", 2),
        ("old_1/c.jpg", 3),  # another case: another directory on this disk
        ("Old%1/d.jpg", 4),  # LIKE wildcards in a name must not match
        ("Old_10/e.jpg", 5),
    ]:
        ledger.put_entry(mapping_id, file_entry(rel_path, asset_id))
    ledger.put_entry(
        mapping_id,
        EntryRecord("Old_1", "dir", 2001, None, "Old_1", None, None, None, None),
    )

    ledger.move_entries(mapping_id, "Old_1", "New")

    assert sorted(ledger.entries(mapping_id)) == [
        "New",
        "New/a.jpg",
        "New/sub/b.jpg",
        "Old%1/d.jpg",
        "Old_10/e.jpg",
        "old_1/c.jpg",
    ]


def test_renaming_an_entry_is_one_step(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    ledger.put_entry(mapping_id, file_entry("a.jpg", 1))
    ledger.record_failure(mapping_id, "a.jpg", "download", "boom", permanent=False)

    ledger.rename_entry(mapping_id, "a.jpg", file_entry("b.jpg", 1))

    assert list(ledger.entries(mapping_id)) == ["b.jpg"]
    assert ledger.failures(mapping_id) == []


def test_withholding_forgets_the_entry_and_remembers_the_version(
    ledger: Ledger,
) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    ledger.put_entry(mapping_id, file_entry("a.jpg", 7))
    folder = EntryRecord("Shoot", "dir", 2001, None, "Shoot", None, None, None, None)
    ledger.put_entry(mapping_id, folder)

    ledger.withhold(mapping_id, file_entry("a.jpg", 7))
    ledger.withhold(mapping_id, folder, folder_only=True)
    ledger.withhold(mapping_id, file_entry("a.jpg", 7))  # repeating is harmless

    assert ledger.entries(mapping_id) == {}
    assert ledger.withheld(mapping_id) == {(1001, 7): "c" * 32, (2001, 0): None}

    ledger.release_withheld(mapping_id, [(1001, 7)])

    assert ledger.withheld(mapping_id) == {(2001, 0): None}


def test_proxy_files_are_recorded_moved_and_forgotten(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    placed = ProxyFileRecord(
        1001, 7, "large_thumbnail", ".proxies/a.jpg/large_thumbnail.jpg", "c" * 32, 99
    )

    ledger.put_proxy_file(mapping_id, placed)
    moved = ProxyFileRecord(
        1001, 7, "large_thumbnail", ".proxies/b.jpg/large_thumbnail.jpg", "c" * 32, 99
    )
    ledger.put_proxy_file(mapping_id, moved)

    assert ledger.proxy_files(mapping_id) == [moved]

    ledger.remove_proxy_file(mapping_id, moved)

    assert ledger.proxy_files(mapping_id) == []


def test_a_placement_note_is_settled_by_the_file_as_it_is_on_disk(
    tmp_path: Path, ledger: Ledger
) -> None:
    root = tmp_path / "mirror"
    root.mkdir()
    mapping_id = ledger.ensure_mapping(str(root), 1001)
    ledger.put_entry(mapping_id, file_entry("old.jpg", 7))
    placed = root / "new.jpg"
    placed.write_bytes(b"placed")
    st = placed.stat()
    noted = replace(
        file_entry("new.jpg", 7), size=6, mtime_ns=st.st_mtime_ns, inode=st.st_ino
    )
    # Noted, then placed; the other note's rename never happened.
    ledger.intend_placement(mapping_id, noted, replaces="old.jpg")
    ledger.intend_placement(mapping_id, replace(noted, rel_path="gone.jpg"))

    recorded = settle_placements(ledger, mapping_id, SafeRoot(root))

    assert recorded == 1
    assert ledger.placements(mapping_id) == []
    assert ledger.entries(mapping_id) == {"new.jpg": noted}

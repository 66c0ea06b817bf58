"""Placing and joining parts ahead of complete, and the Range parser (no server)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from syncagent.emulator.assembly import Assembler, Layout
from syncagent.emulator.objects import ObjectStore
from syncagent.emulator.ranges import RangeNotSatisfiable, parse_range


def _write_part(store: ObjectStore, key: str, number: int, data: bytes) -> None:
    path = store.part_path(key, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{number}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def _write_in_place(
    store: ObjectStore, assembler: Assembler, layout: Layout, number: int, data: bytes
) -> None:
    """Write a part as a PUT of the layout's size does, and record it."""
    offset = assembler.claim("u1", number, len(data), layout, recorded=False)
    assert offset == layout.offset_of(number)
    with store.upload_path("u1").open("r+b" if number > 1 else "wb") as out:
        out.seek(offset)
        out.write(data)
    assembler.release("u1", number)
    assembler.part_recorded("u1", number, layout, in_place=True)


def test_parts_in_place_are_hashed_early_and_the_file_is_renamed(
    tmp_path: Path,
) -> None:
    store = ObjectStore(tmp_path / "objects")
    assembler = Assembler(store)
    layout = Layout(file_size=16, part_size=6, part_count=3)
    for number, data in ((1, b"first "), (3, b"tail"), (2, b"second")):
        _write_in_place(store, assembler, layout, number, data)

    md5_hex = asyncio.run(assembler.finish("u1", layout, "sources/x/data"))
    assembler.close()

    assert store.path_of("sources/x/data").read_bytes() == b"first secondtail"
    assert md5_hex == hashlib.md5(b"first secondtail").hexdigest()
    assert not store.upload_path("u1").exists()
    store.close()


def test_a_part_of_another_size_or_already_recorded_is_kept_apart(
    tmp_path: Path,
) -> None:
    assembler = Assembler(ObjectStore(tmp_path / "objects"))
    layout = Layout(file_size=16, part_size=6, part_count=3)

    assert assembler.claim("u1", 1, 7, layout, recorded=False) is None
    assert assembler.claim("u1", 3, 4, layout, recorded=True) is None
    assert assembler.claim("u1", 2, 6, layout, recorded=False) == 6
    assert assembler.claim("u1", 2, 6, layout, recorded=False) is None
    assembler.release("u1", 2)
    assert assembler.claim("u1", 2, 6, layout, recorded=False) == 6
    assembler.close()


def test_a_part_sent_again_after_hashing_makes_a_fresh_join(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    assembler = Assembler(store)
    layout = Layout(file_size=18, part_size=6, part_count=3)
    _write_in_place(store, assembler, layout, 1, b"first ")
    _write_in_place(store, assembler, layout, 2, b"second")
    _write_part(store, "u1", 1, b"FIRST ")
    _write_part(store, "u1", 3, b" third")

    md5_hex = asyncio.run(assembler.finish("u1", layout, "sources/x/data"))
    assembler.close()

    assert store.path_of("sources/x/data").read_bytes() == b"FIRST second third"
    assert md5_hex == hashlib.md5(b"FIRST second third").hexdigest()
    assert not store.upload_path("u1").exists()
    assert not store.part_path("u1", 1).parent.exists()
    store.close()


def test_parts_of_irregular_sizes_are_joined_from_their_own_files(
    tmp_path: Path,
) -> None:
    store = ObjectStore(tmp_path / "objects")
    assembler = Assembler(store)
    layout = Layout(file_size=12, part_size=5, part_count=3)
    for number, data in ((1, b"abcdef"), (2, b"ghijk"), (3, b"l")):
        _write_part(store, "u1", number, data)

    md5_hex = asyncio.run(assembler.finish("u1", layout, "sources/x/data"))
    assembler.close()

    assert store.path_of("sources/x/data").read_bytes() == b"abcdefghijkl"
    assert md5_hex == hashlib.md5(b"abcdefghijkl").hexdigest()
    store.close()


def test_a_missing_part_fails_the_join(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    assembler = Assembler(store)
    _write_part(store, "u2", 1, b"only one")

    layout = Layout(file_size=16, part_size=8, part_count=2)
    with pytest.raises(OSError, match="part 2 is missing"):
        asyncio.run(assembler.finish("u2", layout, "sources/y/data"))
    assembler.close()
    store.close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-30", (0, 9)),
        ("bytes=8-100", (8, 9)),
        ("bytes=4-2", None),
        ("bytes=0-1,4-5", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 10) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)

"""Joining parts ahead of complete, and the Range header parser (no server needed)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from syncagent.emulator.assembly import Assembler
from syncagent.emulator.objects import ObjectStore
from syncagent.emulator.ranges import RangeNotSatisfiable, parse_range


def _write_part(store: ObjectStore, key: str, number: int, data: bytes) -> None:
    path = store.part_path(key, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{number}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def test_parts_joined_early_and_a_part_sent_again_later(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    assembler = Assembler(store)
    _write_part(store, "u1", 2, b"second")
    _write_part(store, "u1", 1, b"first ")
    assembler.part_arrived("u1", 3)
    _write_part(store, "u1", 3, b" third")
    assembler.part_arrived("u1", 3)
    _write_part(store, "u1", 1, b"FIRST ")

    md5_hex = asyncio.run(assembler.finish("u1", 3, "sources/x/data"))
    assembler.close()

    assert store.path_of("sources/x/data").read_bytes() == b"FIRST second third"
    assert md5_hex == hashlib.md5(b"FIRST second third").hexdigest()
    assert not (tmp_path / "objects" / "uploads" / "u1").exists()
    store.close()


def test_a_missing_part_fails_the_join(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    assembler = Assembler(store)
    _write_part(store, "u2", 1, b"only one")

    with pytest.raises(OSError, match="part 2 is missing"):
        asyncio.run(assembler.finish("u2", 2, "sources/y/data"))
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

"""One read feeds the part MD5s and the whole-file MD5."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest

from syncagent.engine.hashing import (
    BufferBudget,
    PartReader,
    ShortRead,
    part_count_for,
    part_span,
)
from syncagent.engine.upload import choose_part_size

MIB = 1024 * 1024


def read_all(
    data: bytes, part_size: int
) -> tuple[list[tuple[int, int, str]], str, int]:
    budget = BufferBudget(4 * part_size)
    reader = PartReader(io.BytesIO(data), len(data), part_size, budget)
    parts = []
    for part in reader.parts():
        parts.append((part.number, len(part.data), part.md5()))
        part.release()
    return parts, reader.whole_md5(), reader.bytes_read


def test_parts_and_whole_file_checksums() -> None:
    data = bytes(range(256)) * 4100  # 1,049,600 bytes: two full parts and a tail

    parts, whole, read = read_all(data, 512 * 1024)

    assert [(n, size) for n, size, _ in parts] == [(1, 524288), (2, 524288), (3, 1024)]
    for number, _, md5 in parts:
        offset, length = part_span(number, len(data), 512 * 1024)
        assert md5 == hashlib.md5(data[offset : offset + length]).hexdigest()
    assert whole == hashlib.md5(data).hexdigest()
    assert read == len(data)


def test_empty_file_is_one_empty_part() -> None:
    parts, whole, read = read_all(b"", 5 * MIB)

    assert parts == [(1, 0, hashlib.md5(b"").hexdigest())]
    assert whole == hashlib.md5(b"").hexdigest()
    assert read == 0


def test_file_that_shrank_is_a_short_read() -> None:
    budget = BufferBudget(MIB)
    reader = PartReader(io.BytesIO(b"abc"), 10, 4, budget)
    with pytest.raises(ShortRead):
        list(reader.parts())
    assert budget.used == 0


def test_one_part_file_is_hashed_once() -> None:
    data = b"single part"
    reader = PartReader(io.BytesIO(data), len(data), 5 * MIB, BufferBudget(MIB))
    [part] = list(reader.parts())

    assert reader.whole_md5() == part.md5() == hashlib.md5(data).hexdigest()


def test_part_count() -> None:
    assert part_count_for(0, 5 * MIB) == 1
    assert part_count_for(5 * MIB, 5 * MIB) == 1
    assert part_count_for(5 * MIB + 1, 5 * MIB) == 2


def test_part_size_grows_so_no_file_needs_more_than_10000_parts() -> None:
    assert choose_part_size(10 * MIB, 8 * MIB) == 8 * MIB
    assert choose_part_size(1, 1) == 5 * MIB
    huge = 200 * 1024 * MIB  # 200 GiB
    size = choose_part_size(huge, 8 * MIB)
    assert size % MIB == 0
    assert part_count_for(huge, size) <= 10_000
    assert part_count_for(huge, size - MIB) > 10_000


def test_budget_blocks_until_buffers_are_released() -> None:
    budget = BufferBudget(10)
    budget.acquire(6)
    got_second = threading.Event()

    def second() -> None:
        budget.acquire(6)
        got_second.set()

    worker = threading.Thread(target=second)
    worker.start()
    assert not got_second.wait(0.1)
    budget.release(6)
    assert got_second.wait(5)
    worker.join()
    assert budget.used == 6


def test_budget_always_admits_one_oversized_buffer() -> None:
    budget = BufferBudget(10)
    budget.acquire(100)
    assert budget.used == 100


def test_parts_larger_than_the_budget_are_held_one_at_a_time() -> None:
    data = bytes(range(250)) * 2  # five parts of 100 bytes
    budget = BufferBudget(10)
    reader = PartReader(io.BytesIO(data), len(data), 100, budget)
    seen = []

    for part in reader.parts():
        seen.append(budget.used)
        part.release()

    assert seen == [100] * 5
    assert reader.whole_md5() == hashlib.md5(data).hexdigest()
    assert budget.used == 0

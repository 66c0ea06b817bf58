"""One read of a file feeds both the part MD5s and the whole-file MD5.

hashlib releases the GIL on large buffers, so the part digest runs on a pool thread
while the reading thread feeds the whole-file digest: the two use both cores.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import BinaryIO

READ_CHUNK = 1024 * 1024


class ShortRead(Exception):
    """The file ended before its recorded size: it shrank while being read."""


@dataclass(frozen=True)
class Part:
    """One part of a file, read and hashed."""

    number: int
    offset: int
    data: bytes
    md5: str


def md5_hex(data: bytes) -> str:
    """MD5 of a buffer as 32 lowercase hex digits."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_of_file(stream: BinaryIO) -> tuple[str, int]:
    """MD5 of a whole stream and the number of bytes it held."""
    digest = hashlib.md5(usedforsecurity=False)
    total = 0
    while chunk := stream.read(READ_CHUNK):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def part_span(number: int, size: int, part_size: int) -> tuple[int, int]:
    """Offset and length of part `number` (from 1) of a file of `size` bytes."""
    offset = (number - 1) * part_size
    return offset, max(0, min(part_size, size - offset))


def part_count_for(size: int, part_size: int) -> int:
    """How many parts a file of `size` bytes needs; at least one, even when empty."""
    return max(1, -(-size // part_size))


class BufferBudget:
    """Caps the bytes of part buffers alive at once; one buffer is always allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, size: int) -> None:
        """Wait until `size` more bytes fit in the budget."""
        with self._cond:
            while self.used and self.used + size > self.limit:
                self._cond.wait()
            self.used += size

    def release(self, size: int) -> None:
        """Return `size` bytes to the budget."""
        with self._cond:
            self.used -= size
            self._cond.notify_all()


class PartReader:
    """Reads a file in order, part by part, hashing parts and the whole as it goes."""

    def __init__(
        self,
        stream: BinaryIO,
        size: int,
        part_size: int,
        hash_pool: Executor,
        budget: BufferBudget,
    ) -> None:
        self.stream = stream
        self.size = size
        self.part_size = part_size
        self.hash_pool = hash_pool
        self.budget = budget
        self._whole = hashlib.md5(usedforsecurity=False)
        self.bytes_read = 0

    def parts(self) -> Iterator[Part]:
        """Each part in order; the caller must `budget.release(len(part.data))`."""
        for number in range(1, part_count_for(self.size, self.part_size) + 1):
            offset, length = part_span(number, self.size, self.part_size)
            self.budget.acquire(length)
            try:
                data = self._read_exactly(length)
                pending = self.hash_pool.submit(md5_hex, data)
                self._whole.update(data)
                part = Part(number, offset, data, pending.result())
            except BaseException:
                self.budget.release(length)
                raise
            yield part

    def whole_md5(self) -> str:
        """MD5 of every byte read so far (the whole file once `parts` is exhausted)."""
        return self._whole.hexdigest()

    def at_end(self) -> bool:
        """Whether the file has no bytes beyond its recorded size."""
        return not self.stream.read(1)

    def _read_exactly(self, length: int) -> bytes:
        data = self.stream.read(length)
        if len(data) < length:
            # A regular file only reads short at its end; keep reading to be sure.
            rest = [data]
            got = len(data)
            while got < length and (more := self.stream.read(length - got)):
                rest.append(more)
                got += len(more)
            data = b"".join(rest)
            if got < length:
                raise ShortRead(f"file ended {length - got} bytes early")
        self.bytes_read += length
        return data

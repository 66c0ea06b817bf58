"""One read of a file feeds both the part MD5s and the whole-file MD5.

hashlib releases the GIL on large buffers, so the digests of different threads run on
different cores.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

READ_CHUNK = 1024 * 1024


class ShortRead(Exception):
    """The file ended before its recorded size: it shrank while being read."""


class Part:
    """One part of a file, read; its MD5 is computed on first use, once.

    Its buffer counts against a budget until every holder (the sender and, for a
    file of several parts, the whole-file digest) has called `release`.
    """

    __slots__ = ("_budget", "_holders", "_lock", "_md5", "data", "number", "offset")

    def __init__(
        self,
        number: int,
        offset: int,
        data: bytes,
        budget: BufferBudget | None = None,
        holders: int = 1,
    ) -> None:
        self.number = number
        self.offset = offset
        self.data = data
        self._md5: str | None = None
        self._budget = budget
        self._holders = holders
        self._lock = threading.Lock()

    def release(self) -> None:
        """One holder is done with the buffer; the last one frees its budget."""
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last and self._budget is not None:
            self._budget.release(len(self.data))

    def md5(self) -> str:
        """MD5 of the part as 32 lowercase hex digits."""
        if self._md5 is None:
            self._md5 = md5_hex(self.data)
        return self._md5


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
    """Reads a file once, in order, part by part.

    The whole-file MD5 runs on a thread of its own, one part behind the reading; each
    part's MD5 is left to whoever sends the part, so on a machine with two cores the
    two digests run side by side. A one-part file is hashed once: its part MD5 is the
    whole-file MD5.
    """

    def __init__(
        self, stream: BinaryIO, size: int, part_size: int, budget: BufferBudget
    ) -> None:
        self.stream = stream
        self.size = size
        self.part_size = part_size
        self.budget = budget
        self.part_count = part_count_for(size, part_size)
        self.bytes_read = 0
        self._whole = hashlib.md5(usedforsecurity=False)
        # A one-part file needs no second digest, hence no thread for it.
        self._hasher = (
            ThreadPoolExecutor(1, thread_name_prefix="whole-md5")
            if self.part_count > 1
            else None
        )
        self._only: Part | None = None

    def parts(self) -> Iterator[Part]:
        """Each part in order; the caller must `part.release()` each one."""
        holders = 1 if self.part_count == 1 else 2
        try:
            for number in range(1, self.part_count + 1):
                offset, length = part_span(number, self.size, self.part_size)
                self.budget.acquire(length)
                try:
                    data = self._read_exactly(length)
                except BaseException:
                    self.budget.release(length)
                    raise
                part = Part(number, offset, data, self.budget, holders)
                del data
                if self._hasher is None:
                    self._only = part
                else:
                    self._hasher.submit(self._feed_whole, part)
                yield part
                # Drop this frame's hold before the next read, so that with parts
                # larger than the budget only one buffer is alive at a time.
                del part
        finally:
            if self._hasher is not None:
                self._hasher.shutdown(wait=True)

    def _feed_whole(self, part: Part) -> None:
        try:
            self._whole.update(part.data)
        finally:
            part.release()

    def whole_md5(self) -> str:
        """MD5 of the whole file, once `parts` is exhausted."""
        if self._only is not None:
            return self._only.md5()
        if self._hasher is not None:
            self._hasher.shutdown(wait=True)
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

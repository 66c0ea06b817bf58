"""Where the parts of an upload go, and joining them into one file with its MD5.

A part PUT whose length is what the upload's layout expects for that part number
is written straight into the upload's file at the part's offset, unless that part
was already recorded or is being written by another PUT: then the part is kept
apart (objects.py). So in the usual run every part lands in place and `complete`
has nothing to copy: the upload's file is renamed to the new object.

The whole-file MD5 is computed as contiguous parts are recorded, by a worker
thread reading the upload's file behind the writers, so `complete` only has the
tail left to hash. A part recorded apart (sent again, or of another size) makes
`complete` join every part afresh into a new file instead. All work on the
worker runs on one thread in the order it was asked for; the claims of the
PUTs in flight belong to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncagent.emulator.objects import ObjectStore

logger = logging.getLogger(__name__)

_READ_BYTES = 4 << 20


@dataclass(frozen=True)
class Layout:
    """The parts an upload expects: all `part_size` bytes but a shorter last one."""

    file_size: int
    part_size: int
    part_count: int

    def offset_of(self, number: int) -> int:
        """Where part `number` starts in the whole file."""
        return (number - 1) * self.part_size

    def size_of(self, number: int) -> int:
        """How long part `number` is when the parts follow the layout."""
        if number < self.part_count:
            return self.part_size
        return self.file_size - self.offset_of(self.part_count)


@dataclass
class _Hashed:
    """The whole-file MD5 of an upload's first parts, read from its file."""

    md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    next_part: int = 1
    placed: set[int] = field(default_factory=set)
    """The parts recorded in place, which the hash may read."""


class Assembler:
    """Places parts and joins them ahead of `complete`; see the module docstring."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="emulator-assembly")
        self._writing: dict[str, set[int]] = {}
        self._hashed: dict[str, _Hashed] = {}
        self._buffer = bytearray(_READ_BYTES)

    def claim(
        self, upload_key: str, number: int, length: int, layout: Layout, recorded: bool
    ) -> int | None:
        """Return the offset to write a part PUT in place at, or None to keep it apart.

        `recorded` says whether the part is already in the database. A claim
        lasts until release(), whatever the PUT's outcome.
        """
        writing = self._writing.setdefault(upload_key, set())
        if recorded or number in writing or length != layout.size_of(number):
            return None
        writing.add(number)
        return layout.offset_of(number)

    def release(self, upload_key: str, number: int) -> None:
        """End a claim made by claim() (a no-op for a part kept apart)."""
        writing = self._writing.get(upload_key)
        if writing is not None:
            writing.discard(number)
            if not writing:
                del self._writing[upload_key]

    def part_recorded(
        self, upload_key: str, number: int, layout: Layout, in_place: bool
    ) -> None:
        """Note a recorded part; hash ahead what is now contiguous and in place."""
        if layout.part_count > 1:  # else the part's own MD5 is the whole file's
            self._pool.submit(self._note_part, upload_key, number, layout, in_place)

    def discard(self, upload_key: str) -> None:
        """Forget an upload and remove its bytes (restarted, abandoned, deleted)."""
        self._pool.submit(self._discard, upload_key)

    async def finish(self, upload_key: str, layout: Layout, dest_key: str) -> str:
        """Make all parts the file `dest_key` and remove them; return the whole MD5."""
        future = self._pool.submit(self._finish, upload_key, layout, dest_key)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the worker after the work already asked for."""
        self._pool.shutdown(wait=True)

    def _note_part(
        self, upload_key: str, number: int, layout: Layout, in_place: bool
    ) -> None:
        hashed = self._hashed.setdefault(upload_key, _Hashed())
        if not in_place:
            hashed.placed.discard(number)
            return
        hashed.placed.add(number)
        try:
            self._hash_ahead(upload_key, layout, hashed.placed)
        except OSError as exc:
            # Not fatal: finish() hashes from scratch when the running hash is gone.
            logger.debug("upload %s: early hashing stopped: %s", upload_key, exc)
            self._hashed.pop(upload_key, None)

    def _hash_ahead(
        self, upload_key: str, layout: Layout, placed: set[int] | None
    ) -> _Hashed:
        """Hash the parts in place that follow the hashed ones (None: all of them)."""
        hashed = self._hashed.setdefault(upload_key, _Hashed())

        def ready(number: int) -> bool:
            in_place = placed is None or number in placed
            return number <= layout.part_count and in_place

        if not ready(hashed.next_part):
            return hashed
        with self._objects.upload_path(upload_key).open("rb") as source:
            while ready(number := hashed.next_part):
                offset, size = layout.offset_of(number), layout.size_of(number)
                self._copy(source, offset, size, hashed.md5, out=None, number=number)
                hashed.next_part += 1
        return hashed

    def _finish(self, upload_key: str, layout: Layout, dest_key: str) -> str:
        dest = self._objects.path_of(dest_key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            apart = self._parts_apart(upload_key)
            if apart:
                logger.debug("upload %s: parts %s kept apart", upload_key, apart)
                return self._join_afresh(upload_key, layout, apart, dest)
            hashed = self._hash_ahead(upload_key, layout, None)
            upload = self._objects.upload_path(upload_key)
            os.truncate(upload, layout.file_size)
            os.replace(upload, dest)
            return str(hashed.md5.hexdigest())
        finally:
            self._discard(upload_key)

    def _parts_apart(self, upload_key: str) -> set[int]:
        folder = self._objects.part_path(upload_key, 1).parent
        if not folder.is_dir():
            return set()
        return {int(name) for name in os.listdir(folder) if name.isdigit()}

    def _join_afresh(
        self, upload_key: str, layout: Layout, apart: set[int], dest: Path
    ) -> str:
        md5 = hashlib.md5(usedforsecurity=False)
        joining = dest.with_name(f".{dest.name}.joining")
        upload = self._objects.upload_path(upload_key)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(joining.open("wb"))
            in_place = (
                stack.enter_context(upload.open("rb")) if upload.exists() else None
            )
            for number in range(1, layout.part_count + 1):
                if number in apart:
                    part = self._objects.part_path(upload_key, number)
                    with part.open("rb") as source:
                        size = os.fstat(source.fileno()).st_size
                        self._copy(source, 0, size, md5, out=out, number=number)
                elif in_place is not None:
                    offset, size = layout.offset_of(number), layout.size_of(number)
                    self._copy(in_place, offset, size, md5, out=out, number=number)
                else:
                    raise OSError(f"upload {upload_key}: part {number} is missing")
        os.replace(joining, dest)
        return str(md5.hexdigest())

    def _copy(
        self, source: Any, offset: int, size: int, md5: Any, *, out: Any, number: int
    ) -> None:
        """Hash (and append to `out`) `size` bytes of `source` from `offset`."""
        view = memoryview(self._buffer)
        source.seek(offset)
        while size > 0:
            count = source.readinto(view[: min(size, _READ_BYTES)])
            if not count:
                raise OSError(f"part {number} is missing or short")
            md5.update(view[:count])
            if out is not None:
                out.write(view[:count])
            size -= count

    def _discard(self, upload_key: str) -> None:
        self._hashed.pop(upload_key, None)
        self._objects.discard_parts(upload_key)

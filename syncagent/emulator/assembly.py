"""Joining an upload's parts into one file, in order, while later parts still arrive.

Parts land in any order. Whenever the next part in line is on disk, a worker thread
appends it to a growing file and feeds it to a running MD5, so `complete` only has
the tail left to do. Each appended part's file identity (inode, size, mtime) is
kept: if a part was uploaded again after it was appended, `finish` notices and joins
everything again from scratch. All work for all uploads runs on one thread, in the
order it was asked for, so an upload's state is never touched concurrently.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncagent.emulator.objects import ObjectStore

logger = logging.getLogger(__name__)

_COPY_BYTES = 4 << 20
_JOINED_NAME = "joined"

Identity = tuple[int, int, int]


@dataclass
class _Joined:
    """The parts of one upload appended so far."""

    path: Path
    md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    identities: list[Identity] = field(default_factory=list)

    @property
    def next_part(self) -> int:
        return len(self.identities) + 1


class Assembler:
    """Joins parts ahead of `complete`; see the module docstring."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="emulator-assembly")
        self._joined: dict[str, _Joined] = {}

    def part_arrived(self, upload_key: str, part_count: int) -> None:
        """Note that a part of a multi-part upload is on disk."""
        if part_count > 1:
            self._pool.submit(self._advance_quietly, upload_key, part_count)

    def discard(self, upload_key: str) -> None:
        """Forget an upload and remove its parts (restarted, abandoned, deleted)."""
        self._pool.submit(self._discard, upload_key)

    async def finish(self, upload_key: str, part_count: int, dest_key: str) -> str:
        """Join all parts into `dest_key` and remove them; return the whole MD5."""
        future = self._pool.submit(self._finish, upload_key, part_count, dest_key)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the worker after the work already asked for."""
        self._pool.shutdown(wait=True)

    def _advance_quietly(self, upload_key: str, part_count: int) -> None:
        try:
            self._advance(upload_key, part_count)
        except OSError as exc:
            # Not fatal: finish() joins from scratch when the running join is gone.
            logger.debug("upload %s: early join stopped: %s", upload_key, exc)
            self._drop(upload_key)

    def _advance(self, upload_key: str, part_count: int) -> _Joined:
        joined = self._joined.get(upload_key)
        if joined is None:
            path = self._objects.part_path(upload_key, 1).with_name(_JOINED_NAME)
            joined = self._joined[upload_key] = _Joined(path)
            path.unlink(missing_ok=True)
        while joined.next_part <= part_count:
            part = self._objects.part_path(upload_key, joined.next_part)
            try:
                source = part.open("rb")
            except FileNotFoundError:
                break
            with source, joined.path.open("ab") as out:
                joined.identities.append(_identity(os.fstat(source.fileno())))
                _copy_hashing(source, out, joined.md5)
        return joined

    def _finish(self, upload_key: str, part_count: int, dest_key: str) -> str:
        dest = self._objects.path_of(dest_key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            joined = self._advance(upload_key, part_count)
            if not self._still_current(upload_key, joined, part_count):
                logger.debug(
                    "upload %s: a part changed after joining; rejoining", upload_key
                )
                joined.path.unlink(missing_ok=True)
                joined = _Joined(joined.path)
                self._joined[upload_key] = joined
                self._advance(upload_key, part_count)
            if joined.next_part != part_count + 1:
                raise OSError(
                    f"upload {upload_key}: part {joined.next_part} is missing"
                )
            os.replace(joined.path, dest)
            return str(joined.md5.hexdigest())
        finally:
            self._discard(upload_key)

    def _still_current(self, upload_key: str, joined: _Joined, part_count: int) -> bool:
        if joined.next_part != part_count + 1:
            return False
        for number, identity in enumerate(joined.identities, start=1):
            try:
                now = _identity(self._objects.part_path(upload_key, number).stat())
            except FileNotFoundError:
                return False
            if now != identity:
                return False
        return True

    def _discard(self, upload_key: str) -> None:
        self._drop(upload_key)
        self._objects.discard_parts(upload_key)

    def _drop(self, upload_key: str) -> None:
        self._joined.pop(upload_key, None)


def _identity(stat: os.stat_result) -> Identity:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _copy_hashing(source: Any, out: Any, md5: Any) -> None:
    buffer = bytearray(_COPY_BYTES)
    view = memoryview(buffer)
    while count := source.readinto(buffer):
        md5.update(view[:count])
        out.write(view[:count])

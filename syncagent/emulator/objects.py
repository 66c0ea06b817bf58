"""File bytes under <data_dir>/objects: streamed parts, assembled sources, proxies.

An upload in progress has one file, uploads/<key>, into which a part is written
at its own offset when it is the size the layout expects and its region is free
(see assembly.py). A part that cannot go there (another size, or sent again) is
kept apart as uploads/<key>.parts/<number>, and then it is that part's bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

SOURCES = "sources"
"""The folder of uploaded files: one file per key, sources/<hex>."""

_FLUSH_BYTES = 1 << 20
_INLINE_BYTES = 256 << 10
_FLUSH_CHUNKS = 256
"""Under the system's limit of buffers per writev (1024 on Linux)."""
_WRITE_LOCKS = 64
"""Writes into one upload's file take one of these locks, chosen by its key."""


class PartSink:
    """Where the bytes of one part PUT go: its region of the upload file, or a
    temporary file that becomes the part kept apart."""

    def __init__(self, store: ObjectStore, upload_key: str, number: int) -> None:
        self._store = store
        self._upload_key = upload_key
        self._number = number
        self.offset: int | None = None
        self._temp: Path | None = None
        self._fd = -1
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.md5_hex = ""

    def open(self, offset: int | None) -> None:
        """Open the target: the upload file at `offset`, or (None) a file apart."""
        self.offset = offset
        if offset is not None:
            upload = self._store.upload_path(self._upload_key)
            self._fd = os.open(upload, os.O_WRONLY | os.O_CREAT, 0o644)
            return
        final = self._store.part_path(self._upload_key, self._number)
        final.parent.mkdir(exist_ok=True)
        self._temp = final.with_name(f"{self._number}.{uuid.uuid4().hex}.tmp")
        self._fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def write(self, chunks: list[bytes]) -> None:
        """Write and hash `chunks` after what came before (blocking)."""
        for chunk in chunks:
            self._md5.update(chunk)
        if self.offset is None:
            self._write(chunks)
            return
        # The filesystem serialises writes to one file anyway (the inode's lock);
        # parts written side by side into the upload's file would spin on it in the
        # kernel, burning CPU. Waiting here sleeps instead.
        with self._store.write_lock(self._upload_key):
            self._write(chunks)

    def _write(self, chunks: list[bytes]) -> None:
        start = (self.offset or 0) + self.size
        total = sum(map(len, chunks))
        written = os.pwritev(self._fd, chunks, start)
        rest = memoryview(b"".join(chunks))[written:] if written < total else None
        while rest:
            # A short write is rare (a full disk, a signal): finish it piece by piece.
            count = os.pwrite(self._fd, rest, start + total - len(rest))
            rest = rest[count:]
        self.size += total

    async def receive(self, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
        """Stream a part's body; return its size and MD5 hex.

        Writes and hashing run on I/O threads one buffer behind the network, so
        at most two buffers of a part are in memory.
        """
        pool = self._store.pool
        pending: Future[None] | None = None
        try:
            batch: list[bytes] = []
            batched = 0
            async for chunk in chunks:
                batch.append(chunk)
                batched += len(chunk)
                if batched >= _FLUSH_BYTES or len(batch) >= _FLUSH_CHUNKS:
                    if pending is not None:
                        await asyncio.wrap_future(pending)
                    pending = pool.submit(self.write, batch)
                    batch, batched = [], 0
            if pending is not None:
                await asyncio.wrap_future(pending)
            if batched > _INLINE_BYTES:
                pending = pool.submit(self.write, batch)
                await asyncio.wrap_future(pending)
            elif batch:
                self.write(batch)  # a small part: cheaper here than on a thread
        except BaseException:
            self._close_after(pending)
            raise
        self._close()
        self.md5_hex = self._md5.hexdigest()
        return self.size, self.md5_hex

    def keep(self) -> None:
        """Make what arrived the part's bytes (after it was recorded)."""
        final = self._store.part_path(self._upload_key, self._number)
        if self._temp is not None:
            os.replace(self._temp, final)
        else:
            # A copy kept apart would override the region just written.
            final.unlink(missing_ok=True)

    def drop(self) -> None:
        """Forget what arrived (the region of the upload file is left as junk)."""
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _close_after(self, pending: Future[None] | None) -> None:
        """Close (and drop) once the last write, if any, has finished."""

        def cleanup(_done: object = None) -> None:
            self._close()
            self.drop()

        if pending is None:
            cleanup()
        else:
            pending.add_done_callback(cleanup)


class ObjectStore:
    """Owns the files under objects/: keys are paths relative to that root."""

    def __init__(self, root: Path, io_threads: int = 8) -> None:
        self.root = root.resolve()
        self._uploads = self.root / "uploads"
        self._uploads.mkdir(parents=True, exist_ok=True)
        (self.root / SOURCES).mkdir(exist_ok=True)
        self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="emulator-io")
        self._write_locks = [threading.Lock() for _ in range(_WRITE_LOCKS)]

    def path_of(self, key: str) -> Path:
        """Return the file of `key`; raise ValueError for keys outside the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key outside the store: {key}")
        return path

    def new_key(self, prefix: str) -> str:
        """Return a fresh, unused key right under `prefix` (a file or a folder)."""
        return f"{prefix}/{uuid.uuid4().hex}"

    def upload_path(self, upload_key: str) -> Path:
        """Return the upload's file, which holds the parts written in place."""
        return self._uploads / upload_key

    def part_path(self, upload_key: str, part_number: int) -> Path:
        """Return where part `part_number` of an upload lives when kept apart."""
        return self._uploads / f"{upload_key}.parts" / str(part_number)

    def write_lock(self, upload_key: str) -> threading.Lock:
        """The lock that writes into the file of `upload_key` take."""
        return self._write_locks[hash(upload_key) % _WRITE_LOCKS]

    def part_sink(self, upload_key: str, part_number: int) -> PartSink:
        """Return a sink for one PUT of a part (open it before receiving)."""
        return PartSink(self, upload_key, part_number)

    def discard_parts(self, upload_key: str) -> None:
        """Remove every byte of an upload in progress."""
        self.upload_path(upload_key).unlink(missing_ok=True)
        apart = self.part_path(upload_key, 1).parent
        if apart.exists():
            shutil.rmtree(apart, ignore_errors=True)

    def adopt_single_part(self, upload_key: str, dest_key: str) -> None:
        """Move the only part of an upload to `dest_key` (its MD5 is the whole's)."""
        dest = self.path_of(dest_key)
        apart = self.part_path(upload_key, 1)
        os.replace(apart if apart.exists() else self.upload_path(upload_key), dest)
        self.discard_parts(upload_key)

    def delete(self, key: str) -> None:
        """Remove the file of `key` and its folder if that is now empty (but never
        a top folder such as sources/)."""
        path = self.path_of(key)
        path.unlink(missing_ok=True)
        folder = path.parent
        if self.root not in (folder, folder.parent) and not any(folder.iterdir()):
            folder.rmdir()

    def read_chunk(self, key: str, offset: int, length: int) -> bytes:
        """Read up to `length` bytes of `key` from `offset` (blocking)."""
        with self.path_of(key).open("rb") as source:
            source.seek(offset)
            return source.read(length)

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The I/O thread pool (for blocking file work from async code)."""
        return self._pool

    def close(self) -> None:
        """Stop the I/O threads."""
        self._pool.shutdown(wait=True)

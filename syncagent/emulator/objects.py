"""File bytes under <data_dir>/objects: streamed parts, assembled sources, proxies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

_FLUSH_BYTES = 1 << 20


class _PartWriter:
    """Writes a part to a temporary file while hashing it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._file = path.open("wb")

    def write(self, data: bytes | bytearray) -> None:
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    def close(self) -> str:
        self._file.close()
        return self._md5.hexdigest()


def _abort_after(writer: _PartWriter, pending: Future[None] | None) -> None:
    """Remove a partial part file once its last write (if any) has finished."""

    def cleanup(_done: object = None) -> None:
        writer.close()
        writer.path.unlink(missing_ok=True)

    if pending is None:
        cleanup()
    else:
        pending.add_done_callback(cleanup)


class ObjectStore:
    """Owns the files under objects/: keys are paths relative to that root."""

    def __init__(self, root: Path, io_threads: int = 8) -> None:
        self.root = root.resolve()
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="emulator-io")

    def path_of(self, key: str) -> Path:
        """Return the file of `key`; raise ValueError for keys outside the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key outside the store: {key}")
        return path

    def new_key(self, prefix: str, name: str = "data") -> str:
        """Return a fresh, unused key under `prefix`."""
        return f"{prefix}/{uuid.uuid4().hex}/{name}"

    def part_path(self, upload_key: str, part_number: int) -> Path:
        """Return where part `part_number` of an upload lives once received."""
        return self.root / "uploads" / upload_key / str(part_number)

    async def receive_part(
        self, upload_key: str, part_number: int, chunks: AsyncIterator[bytes]
    ) -> tuple[int, str]:
        """Stream a part to disk; return its size and MD5 hex.

        Writes and hashing run on I/O threads one buffer behind the network, so
        at most two buffers of a part are in memory. On any error the partial
        file is removed and the previous copy of the part (if any) is kept.
        """
        final = self.part_path(upload_key, part_number)
        writer = _PartWriter(final.with_name(f"{part_number}.{uuid.uuid4().hex}.tmp"))
        pending: Future[None] | None = None
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= _FLUSH_BYTES:
                    if pending is not None:
                        await asyncio.wrap_future(pending)
                    pending = self._pool.submit(writer.write, buffer)
                    buffer = bytearray()
            if pending is not None:
                await asyncio.wrap_future(pending)
            writer.write(buffer)
            md5_hex = writer.close()
            os.replace(writer.path, final)
        except BaseException:
            _abort_after(writer, pending)
            raise
        return writer.size, md5_hex

    def discard_parts(self, upload_key: str) -> None:
        """Remove every part of an upload."""
        shutil.rmtree(self.root / "uploads" / upload_key, ignore_errors=True)

    def adopt_single_part(self, upload_key: str, dest_key: str) -> None:
        """Move the only part of an upload to `dest_key` (its MD5 is the whole's)."""
        dest = self.path_of(dest_key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.part_path(upload_key, 1), dest)
        self.discard_parts(upload_key)

    def delete(self, key: str) -> None:
        """Remove the file of `key` and its now-empty directory."""
        path = self.path_of(key)
        path.unlink(missing_ok=True)
        if path.parent != self.root and not any(path.parent.iterdir()):
            path.parent.rmdir()

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

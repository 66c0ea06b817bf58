"""Download a file into the mirror: temp file, resume, checksum, atomic placement.

Bytes go to a temp file (`.syncagent-dl-<key>.part`) in the target directory. An
interrupted transfer resumes with `Range` from what the temp file holds, within the
pass and across passes (the key names the asset and the version); a temp file that is
not a plain file of ours (a hard link, say) is never written into. A stop request ends
a transfer between two chunks, its temp file kept to resume from; a full disk deletes
it, to give back the space. Once every byte is there, its MD5 and size are checked
against what Compass said; a file that fails the check is deleted and never placed.
Placing is a rename in the same directory: a new file never replaces anything (a hard
link claims the name), a new revision replaces the synced file only while it is still
exactly as recorded.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from syncagent.compass import (
    CompassClient,
    CompassUnreachable,
    IntegrityError,
    TransientError,
    UrlExpired,
)
from syncagent.engine.names import AGENT_PREFIX
from syncagent.engine.problems import FileProblem
from syncagent.engine.progress import Progress
from syncagent.engine.safe_root import (
    Dir,
    Identity,
    LocalChanged,
    SafeRoot,
    UnsafePath,
    split_rel_path,
)

log = logging.getLogger(__name__)

ATTEMPTS = 6
BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 4.0
READ_CHUNK = 1024 * 1024

UrlSource = Callable[[], str]


def temp_name(key: str) -> str:
    """The temp file a download with this key writes to."""
    return f"{AGENT_PREFIX}dl-{key}.part"


def source_key(asset_id: int, checksum: str) -> str:
    """The download key of one version of an asset's source."""
    return f"{asset_id}-{checksum[:16]}"


class DownloadStopped(FileProblem):
    """The run was asked to stop in the middle of this download."""

    def __init__(self, offset: int) -> None:
        reason = (
            f"stopped before its download finished; resumes at byte {offset} "
            "on the next run"
        )
        super().__init__(reason, permanent=False)
        self.offset = offset


@dataclass(frozen=True)
class Expected:
    """What the downloaded bytes must be: their MD5 (if known) and size (if known)."""

    md5: str | None
    size: int | None


class Fetched:
    """A verified download waiting in its temp file, to be placed under a name."""

    def __init__(self, directory: Dir, temp: str, received: int, resumed_at: int):
        self.directory = directory
        self.temp = temp
        self.received = received
        self.resumed_at = resumed_at
        self.placed: str | None = None

    def place_new(self, name: str) -> Identity:
        """Give the file a name that must be free; Occupied if it is taken."""
        self.directory.move_new(self.temp, self.directory, name)
        return self._placed(name)

    def place_replacing(self, name: str, expect: Identity) -> Identity:
        """Replace the synced file `name`, only while it is as recorded.

        Raises LocalChanged when it changed (the caller keeps both); a file that is
        gone is simply put back.
        """
        st = self.directory.regular(name)
        if st is None:
            return self.place_new(name)
        if Identity.of(st) != expect:
            raise LocalChanged(self.directory.rel(name))
        self.directory.replace(self.temp, name)
        return self._placed(name)

    def place_over(self, name: str) -> Identity:
        """Replace whatever regular file has the name (for proxies, which are ours)."""
        self.directory.regular(name)
        self.directory.replace(self.temp, name)
        return self._placed(name)

    def _placed(self, name: str) -> Identity:
        self.placed = name
        self.directory.sync()
        st = self.directory.regular(name)
        assert st is not None
        return Identity.of(st)


class Downloader:
    """Fetches presigned URLs into a mapping's mirror through its SafeRoot."""

    def __init__(
        self,
        client: CompassClient,
        root: SafeRoot,
        progress: Progress,
        *,
        attempts: int = ATTEMPTS,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.root = root
        self.progress = progress
        self.attempts = attempts
        # Set when the run is stopping: transfers end at the next chunk.
        self.stop = stop or threading.Event()

    @contextmanager
    def fetched(
        self,
        rel_dir: str,
        key: str,
        url_source: UrlSource,
        expected: Expected,
        *,
        subject: str | None = None,
    ) -> Iterator[Fetched]:
        """Download into a temp file in `rel_dir` and check it; yield it to place.

        `subject` names the download in log lines (the file it is for).

        Raises IntegrityError (the temp file is deleted) when the bytes are not the
        ones Compass described, TransientError when the transfer kept failing and
        DownloadStopped on a stop request (the temp file stays, to resume from in
        both cases). The temp file is removed if not placed.
        """
        split_rel_path(rel_dir)
        with self.root.open_dir(rel_dir, create=True) as directory:
            temp = temp_name(key)
            try:
                received, resumed_at = self._fetch(
                    directory,
                    temp,
                    url_source,
                    expected,
                    subject or directory.rel(temp),
                )
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # Keeping the part would hold on to space the disk lacks.
                directory.unlink(temp)
                raise FileProblem(
                    f"the disk is full ({exc.strerror}); the partial download was "
                    "deleted and starts over on the next pass",
                    permanent=False,
                ) from exc
            result = Fetched(directory, temp, received, resumed_at)
            try:
                yield result
            finally:
                if result.placed is None:
                    directory.unlink(temp)

    # -- transfer -------------------------------------------------------------------

    def _fetch(
        self,
        directory: Dir,
        temp: str,
        url_source: UrlSource,
        expected: Expected,
        subject: str,
    ) -> tuple[int, int]:
        fd = _open_temp(directory, temp)
        with os.fdopen(fd, "r+b") as stream:
            transfer = _Transfer.resume(stream, expected.size)
            resumed_at = transfer.offset
            url: str | None = None
            for attempt in range(1, self.attempts + 1):
                if expected.size is not None and transfer.offset >= expected.size:
                    break
                if self.stop.is_set():
                    raise DownloadStopped(transfer.offset)
                try:
                    url = url or url_source()
                    self._stream(transfer, url)
                    break
                except UrlExpired:
                    url = None
                except CompassUnreachable:
                    # The client has spent its retries already: nothing to add.
                    raise
                except TransientError as exc:
                    if attempt == self.attempts:
                        raise
                    log.info(
                        "%s: %s; resuming at byte %d", subject, exc, transfer.offset
                    )
                    time.sleep(min(BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_SECONDS))
            stream.flush()
            os.fsync(stream.fileno())
        self._verify(directory, temp, transfer, expected)
        return transfer.received, resumed_at

    def _stream(self, transfer: _Transfer, url: str) -> None:
        """Append the body from the transfer's offset; start over if sent it all."""
        with self.client.open_download(url, transfer.offset) as body:
            if body.offset != transfer.offset:
                transfer.restart()
            for chunk in body.chunks:
                transfer.add(chunk)
                self.progress.bytes_sent(len(chunk))
                if self.stop.is_set():
                    raise DownloadStopped(transfer.offset)

    @staticmethod
    def _verify(
        directory: Dir, temp: str, transfer: _Transfer, expected: Expected
    ) -> None:
        md5, size = transfer.digest.hexdigest(), transfer.offset
        wrong_size = expected.size is not None and size != expected.size
        wrong_md5 = expected.md5 is not None and md5 != expected.md5.lower()
        if wrong_size or wrong_md5:
            directory.unlink(temp)
            raise IntegrityError(
                f"downloaded {size} bytes with MD5 {md5}; Compass described "
                f"{expected.size} bytes with MD5 {expected.md5}; not placed"
            )


def _open_temp(directory: Dir, temp: str) -> int:
    """Open a download's temp file, to resume it or start it.

    Only a plain file of ours is resumed: a hard link (which would write through to
    the file it shares), a file of another user or anything else at that name is
    removed first (the name only; what it pointed to is left alone).
    """
    st = directory.lstat(temp)
    if st is not None and not _ours(st):
        log.warning(
            "%s: not a download of ours (a hard link, another user's file or not a "
            "file); removed, the download starts over",
            directory.rel(temp),
        )
        directory.unlink(temp)
    fd = directory.open_file(temp, os.O_RDWR | os.O_CREAT)
    if not _ours(os.fstat(fd)):
        os.close(fd)
        raise UnsafePath(directory.rel(temp), f"{directory.rel(temp)} keeps changing")
    return fd


def _ours(st: os.stat_result) -> bool:
    """Whether a temp file is a plain file this process may resume into."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == os.geteuid()


class _Transfer:
    """The temp file being written: its running MD5, length, and bytes received."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.md5(usedforsecurity=False)
        self.offset = 0
        self.received = 0

    @classmethod
    def resume(cls, stream: BinaryIO, expected_size: int | None) -> _Transfer:
        """Go on from what a previous attempt left, when its length makes sense."""
        transfer = cls(stream)
        size = stream.seek(0, os.SEEK_END)
        if expected_size is None or size > expected_size:
            transfer.restart()
            return transfer
        stream.seek(0)
        while chunk := stream.read(READ_CHUNK):
            transfer.digest.update(chunk)
            transfer.offset += len(chunk)
        return transfer

    def restart(self) -> None:
        """Throw away what the temp file holds."""
        self.stream.seek(0)
        self.stream.truncate()
        self.digest = hashlib.md5(usedforsecurity=False)
        self.offset = 0

    def add(self, chunk: bytes) -> None:
        """Append bytes that arrived."""
        self.stream.seek(self.offset)
        self.stream.write(chunk)
        self.digest.update(chunk)
        self.offset += len(chunk)
        self.received += len(chunk)


def hash_local(root: SafeRoot, rel_path: str) -> str | None:
    """MD5 of a local file, read without following links; None if it is gone."""
    with (
        contextlib.suppress(FileNotFoundError),
        root.parent_of(rel_path) as (
            directory,
            name,
        ),
    ):
        if directory.regular(name) is None:
            return None
        with directory.read(name) as stream:
            digest = hashlib.md5(usedforsecurity=False)
            while chunk := stream.read(READ_CHUNK):
                digest.update(chunk)
            return digest.hexdigest()
    return None

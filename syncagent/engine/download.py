"""Download a file into the mirror: temp file, resume, checksum, atomic placement.

Bytes go to a temp file (`.syncagent-dl-<key>.part`) in the target directory. An
interrupted transfer resumes with `Range` from what the temp file holds, within the
pass and across passes (the key names the asset and the version); a temp file that is
not a plain file of ours (a hard link, say) is never written into. A transfer starts
only if the disk can hold what it still needs: every download in progress in this
process claims those bytes (`SpaceReservations`), so two of them never count the same
free space, and one that cannot fit fails at once with nothing sent. A stop request
ends a transfer between two chunks, and a disk that fills up all the same (from
elsewhere) ends it at the write that failed; both keep the temp file to resume from.
Once every byte is there, its MD5 and size are checked against what Compass said; a
file that fails the check is deleted and never placed.
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
import re
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
from syncagent.engine.disk_space import (
    SHARED_SPACE,
    FreeSpace,
    NoRoom,
    Short,
    SpaceClaim,
    SpaceReservations,
    free_bytes,
    megabytes,
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
ByteCount = Callable[[int], None]


def temp_name(key: str) -> str:
    """The temp file a download with this key writes to."""
    return f"{AGENT_PREFIX}dl-{key}.part"


def source_key(asset_id: int, checksum: str) -> str:
    """The download key of one version of an asset's source."""
    return f"{asset_id}-{checksum[:16]}"


_SOURCE_TEMP = re.compile(rf"{re.escape(AGENT_PREFIX)}dl-(\d+)-[0-9a-f]{{16}}\.part")


def source_asset_of(temp: str) -> int | None:
    """The asset whose source a temp file name holds (None: a proxy, or not ours)."""
    found = _SOURCE_TEMP.fullmatch(temp)
    return int(found.group(1)) if found else None


class DownloadStopped(FileProblem):
    """The run was asked to stop in the middle of this download."""

    def __init__(self, offset: int) -> None:
        reason = (
            f"stopped before its download finished; resumes at byte {offset} "
            "on the next run"
        )
        super().__init__(reason, permanent=False)
        self.offset = offset


class DiskFilled(FileProblem):
    """The disk filled up during a download; its temp file is kept to resume from."""

    def __init__(self, exc: OSError, kept: int) -> None:
        if kept:
            reason = (
                f"the disk filled up ({exc.strerror}); the {megabytes(kept)} "
                "downloaded so far are kept and the download resumes from there "
                "once space is freed"
            )
        else:
            reason = (
                f"the disk is full ({exc.strerror}); not downloaded until space is "
                "freed"
            )
        super().__init__(reason, permanent=False)


@dataclass(frozen=True)
class Expected:
    """What the downloaded bytes must be: their MD5 (if known) and size (if known)."""

    md5: str | None
    size: int | None


class Fetched:
    """A verified download waiting in its temp file, to be placed under a name."""

    def __init__(self, directory: Dir, temp: str, resumed_at: int):
        self.directory = directory
        self.temp = temp
        self.resumed_at = resumed_at
        self.placed: str | None = None

    def identity(self) -> Identity:
        """The temp file's identity, which a rename into place keeps."""
        st = self.directory.regular(self.temp)
        assert st is not None, "a fetched temp file is a regular file"
        return Identity.of(st)

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
    """Fetches presigned URLs into a mapping's mirror through its SafeRoot.

    `free_space` measures the disk of a directory and `reservations` holds what the
    downloads in progress still need: by default the real free space, and one book
    for the whole process, since mappings that share a disk pull at the same time.
    """

    def __init__(
        self,
        client: CompassClient,
        root: SafeRoot,
        progress: Progress,
        *,
        attempts: int = ATTEMPTS,
        stop: threading.Event | None = None,
        free_space: FreeSpace | None = None,
        reservations: SpaceReservations | None = None,
    ) -> None:
        self.client = client
        self.root = root
        self.progress = progress
        self.attempts = attempts
        # Set when the run is stopping: transfers end at the next chunk.
        self.stop = stop or threading.Event()
        self.free_space = free_space or free_bytes
        self.reservations = reservations or SHARED_SPACE

    @contextmanager
    def fetched(
        self,
        rel_dir: str,
        key: str,
        url_source: UrlSource,
        expected: Expected,
        *,
        subject: str | None = None,
        count_received: ByteCount | None = None,
    ) -> Iterator[Fetched]:
        """Download into a temp file in `rel_dir` and check it; yield it to place.

        `subject` names the download in log lines (the file it is for);
        `count_received` is told the bytes that arrived, once the transfer ends,
        whether it succeeded or not.

        Raises NoRoom, before any byte is sent, when the disk cannot hold what the
        download still needs; IntegrityError (the temp file is deleted) when the
        bytes are not the ones Compass described; TransientError when the transfer
        kept failing, DownloadStopped on a stop request and DiskFilled when the disk
        filled up (the temp file stays, to resume from, in these three cases). The
        temp file is removed if not placed.
        """
        split_rel_path(rel_dir)
        with self.root.open_dir(rel_dir, create=True) as directory:
            temp = temp_name(key)
            with self._room(directory, temp, expected.size) as claim:
                resumed_at = self._fetch(
                    directory,
                    temp,
                    url_source,
                    expected,
                    claim=claim,
                    subject=subject or directory.rel(temp),
                    count_received=count_received or _ignore,
                )
            result = Fetched(directory, temp, resumed_at)
            try:
                yield result
            finally:
                if result.placed is None:
                    directory.unlink(temp)

    @contextmanager
    def _room(
        self, directory: Dir, temp: str, size: int | None
    ) -> Iterator[SpaceClaim]:
        """Claim the space a download still needs while it runs; NoRoom if short."""
        remaining = _still_needed(directory, temp, size)
        device = os.fstat(directory.fd).st_dev
        try:
            claim = self.reservations.claim(
                device, size or 0, remaining, lambda: self.free_space(directory.fd)
            )
        except Short as short:
            disk_of = str(self.root.root)
            raise NoRoom(remaining, short.available, short.held, disk_of) from None
        try:
            yield claim
        finally:
            claim.release()

    # -- transfer -------------------------------------------------------------------

    def _fetch(
        self,
        directory: Dir,
        temp: str,
        url_source: UrlSource,
        expected: Expected,
        *,
        claim: SpaceClaim,
        subject: str,
        count_received: ByteCount,
    ) -> int:
        """Bring the temp file up to every byte and check them; where it resumed."""
        try:
            fd = _open_temp(directory, temp)
            with os.fdopen(fd, "r+b") as stream:
                transfer = _Transfer.resume(stream, expected.size, claim)
                try:
                    self._transfer(transfer, url_source, expected.size, subject)
                finally:
                    count_received(transfer.received)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # What did land is valid: the next pass resumes from it with Range.
            st = directory.lstat(temp)
            raise DiskFilled(exc, st.st_size if st is not None else 0) from exc
        self._verify(directory, temp, transfer, expected)
        return transfer.resumed_at

    def _transfer(
        self,
        transfer: _Transfer,
        url_source: UrlSource,
        size: int | None,
        subject: str,
    ) -> None:
        """Stream until every byte is in the temp file, retrying what can be."""
        url: str | None = None
        for attempt in range(1, self.attempts + 1):
            if size is not None and transfer.offset >= size:
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
                log.info("%s: %s; resuming at byte %d", subject, exc, transfer.offset)
                time.sleep(min(BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_SECONDS))
        transfer.stream.flush()
        os.fsync(transfer.stream.fileno())

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


def _still_needed(directory: Dir, temp: str, size: int | None) -> int:
    """Bytes a download has yet to write: its size less the temp file it resumes.

    Follows `_Transfer.resume`: only a plain file of ours no longer than the asset is
    resumed. Zero when the size is unknown, as there is nothing to compare then.
    """
    if size is None:
        return 0
    st = directory.lstat(temp)
    if st is None or not _ours(st) or st.st_size > size:
        return size
    return size - st.st_size


def _ignore(count: int) -> None:
    del count


class _Transfer:
    """The temp file being written: its running MD5, length, and bytes received.

    Its claim on the disk follows the length, so it holds only what is still to come.
    """

    def __init__(self, stream: BinaryIO, claim: SpaceClaim) -> None:
        self.stream = stream
        self.claim = claim
        self.digest = hashlib.md5(usedforsecurity=False)
        self.offset = 0
        self.resumed_at = 0
        self.received = 0

    @classmethod
    def resume(
        cls, stream: BinaryIO, expected_size: int | None, claim: SpaceClaim
    ) -> _Transfer:
        """Go on from what a previous attempt left, when its length makes sense."""
        transfer = cls(stream, claim)
        size = stream.seek(0, os.SEEK_END)
        if expected_size is None or size > expected_size:
            transfer.restart()
            return transfer
        stream.seek(0)
        while chunk := stream.read(READ_CHUNK):
            transfer.digest.update(chunk)
            transfer.offset += len(chunk)
        transfer.resumed_at = transfer.offset
        return transfer

    def restart(self) -> None:
        """Throw away what the temp file holds."""
        self.stream.seek(0)
        self.stream.truncate()
        self.digest = hashlib.md5(usedforsecurity=False)
        self.offset = 0
        self.claim.track(self.offset)

    def add(self, chunk: bytes) -> None:
        """Append bytes that arrived."""
        self.received += len(chunk)
        self.stream.seek(self.offset)
        self.stream.write(chunk)
        self.digest.update(chunk)
        self.offset += len(chunk)
        self.claim.track(self.offset)


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

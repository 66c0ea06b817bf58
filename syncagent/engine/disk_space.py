"""Free disk space for downloads: measured, and claimed by those in progress.

A download claims the bytes it still has to write before it starts, so that two
running at once never count the same free space, and one that cannot fit is refused
before a byte is sent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from syncagent.engine.problems import FileProblem

# Left free beyond what downloads need: room for the file system's own blocks and for
# the ledger, which may live on the same disk.
SPARE_BYTES = 1024 * 1024

# The bytes a user without privileges may still write on a directory's file system,
# from a descriptor of that directory.
FreeSpace = Callable[[int], int]


def free_bytes(dir_fd: int) -> int:
    """Free space for an unprivileged user on the file system of a directory."""
    st = os.fstatvfs(dir_fd)
    return st.f_bavail * st.f_frsize


def megabytes(count: int) -> str:
    """A byte count as the summary shows it."""
    return f"{count / 1e6:.1f} MB"


class NoRoom(FileProblem):
    """The disk cannot hold what a download still needs; nothing was transferred."""

    def __init__(self, needed: int, available: int, held: int, disk_of: str) -> None:
        held_part = (
            f" after {megabytes(held)} for downloads in progress" if held else ""
        )
        reason = (
            f"needs {megabytes(needed)}, {megabytes(available)} free on the disk of "
            f"{disk_of}{held_part}; not downloaded until space is freed"
        )
        super().__init__(reason, permanent=False)


class Short(Exception):
    """A claim that does not fit: what was free for it, and what others hold."""

    def __init__(self, available: int, held: int) -> None:
        super().__init__(available, held)
        self.available = available
        self.held = held


class SpaceReservations:
    """Disk space promised to downloads in progress, per file system; thread-safe.

    A download claims the bytes it still has to write before it starts, and its claim
    shrinks as they land (the free space counts them from then on), so downloads that
    run at once never count the same free bytes twice.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claims: set[SpaceClaim] = set()

    def claim(
        self, device: int, size: int, remaining: int, free: Callable[[], int]
    ) -> SpaceClaim:
        """Claim the `remaining` bytes of a file of `size` on file system `device`.

        `free` measures the file system now. Raises Short when its free space, less
        the claims of other downloads and SPARE_BYTES, cannot hold them. Nothing is
        measured or checked for a download with nothing left to write.
        """
        with self.lock:
            if remaining > 0:
                held = self.held(device)
                available = free() - held - SPARE_BYTES
                if remaining > available:
                    raise Short(max(available, 0), held)
            claim = SpaceClaim(self, device, size, remaining)
            self.claims.add(claim)
            return claim

    def held(self, device: int) -> int:
        """Bytes claimed on a file system and not written yet (call with the lock)."""
        return sum(c.remaining for c in self.claims if c.device == device)


class SpaceClaim:
    """The space one download in progress still needs, held in SpaceReservations."""

    def __init__(
        self, book: SpaceReservations, device: int, size: int, remaining: int
    ) -> None:
        self.book = book
        self.device = device
        self.size = size
        self.remaining = remaining

    def track(self, offset: int) -> None:
        """The temp file holds `offset` bytes now: only the rest stays claimed."""
        with self.book.lock:
            self.remaining = max(self.size - offset, 0)

    def release(self) -> None:
        """The download ended: give back what it did not write."""
        with self.book.lock:
            self.book.claims.discard(self)


# Every download of this process, whatever its mapping, claims from the same book.
SHARED_SPACE = SpaceReservations()

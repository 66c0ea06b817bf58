"""The settle queue: a changed file waits until it has held still, then goes to a pass.

A file is settled once its size and mtime have not changed for `settle_seconds` and it
can be opened for reading. Every write seen restarts its wait. A file that holds still
but cannot be opened is released after a grace period anyway, so the pass records why.
What cannot be uploaded at all (a link, a pipe, a device, a socket) waits the same way,
without ever being opened, so that a pass soon reports it.

In a drop box, a sidecar (`<file>.json` beside its file) travels with its file: it is
never announced as a drop of its own. A `.json` with no file beside it yet is
announced once it settles, as a sidecar's file often follows it moments later.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from syncagent.engine.sidecar import (
    SIDECAR_SUFFIX,
    is_sidecar,
    may_be_sidecar,
    sidecar_of,
)
from syncagent.watch.paths import printable

log = logging.getLogger(__name__)

# A file that holds still this long but cannot be opened goes to the pass regardless.
UNREADABLE_GRACE_SECONDS = 60.0
# How long a settled file waits for the pass to take it before the queue forgets it.
RELEASED_TTL_SECONDS = 600.0

Clock = Callable[[], float]


@dataclass
class _Waiting:
    """A file in the queue: the size and mtime last seen, and since when."""

    size: int
    mtime_ns: int
    since: float
    regular: bool = True


@dataclass(frozen=True)
class _Seen:
    """What a path is now: a regular file or not, its size and mtime."""

    size: int
    mtime_ns: int
    regular: bool

    def same(self, waiting: _Waiting) -> bool:
        """Whether nothing changed since the path was queued."""
        return (self.size, self.mtime_ns, self.regular) == (
            waiting.size,
            waiting.mtime_ns,
            waiting.regular,
        )


class SettleQueue:
    """Changed files of one mapping root, each waiting to hold still; thread-safe."""

    def __init__(
        self,
        root: Path,
        settle_seconds: float,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sidecars: bool = False,
    ) -> None:
        self.root = root
        self.settle_seconds = settle_seconds
        self.sidecars = sidecars
        self.clock = clock
        self.wall_clock = wall_clock
        self._waiting: dict[str, _Waiting] = {}
        # Settled by observation and handed on: a pass takes these without looking at
        # their mtime, which a share with a skewed clock may set in the future.
        self._released: dict[str, _Waiting] = {}
        # Files a pull has just put in place, as it left them: their own events are
        # no change to upload (nor to announce as queued).
        self._placed: dict[str, tuple[_Seen, float]] = {}
        # Drop box `.json` files waiting with no file beside them: announced once
        # they settle, unless their file arrived meanwhile.
        self._unannounced: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def pending(self) -> list[str]:
        """The relative paths still waiting, sorted."""
        with self._lock:
            return sorted(self._waiting)

    def placed(self, rel_path: str) -> None:
        """A pull renamed a download into place: events of that file as it is now
        are the agent's own."""
        seen = self._stat(rel_path)
        if seen is not None and seen.regular:
            with self._lock:
                self._placed[rel_path] = (seen, self.clock())

    def touch(self, rel_path: str) -> None:
        """A write was seen: (re)start the file's wait; a vanished file leaves."""
        seen = self._stat(rel_path)
        with self._lock:
            if seen is None:
                self._waiting.pop(rel_path, None)
                self._unannounced.discard(rel_path)
                return
            placed = self._placed.pop(rel_path, None)
            if placed is not None and placed[0] == seen:
                self._placed[rel_path] = placed
                log.debug("%s: placed by a pull; not queued", printable(rel_path))
                return
            first = rel_path not in self._waiting
            self._waiting[rel_path] = _Waiting(
                seen.size, seen.mtime_ns, self.clock(), seen.regular
            )
            if first and seen.regular and _is_utf8(rel_path):
                self._announce(rel_path)
        if not first:
            log.debug(
                "%s: changed again; waiting for it to settle", printable(rel_path)
            )
        elif not (seen.regular and _is_utf8(rel_path)):
            log.debug(
                "%s: cannot be uploaded; a pass will say why", printable(rel_path)
            )

    def _announce(self, rel_path: str) -> None:
        """Say that a new file is queued; a drop box's sidecar is no drop of its own.

        Called with the lock held.
        """
        if not self.sidecars:
            log.info("%s: queued, waiting for it to settle", rel_path)
        elif is_sidecar(self.root, rel_path):
            log.debug("%s: a sidecar; it goes with its file", rel_path)
        elif may_be_sidecar(rel_path):
            self._unannounced.add(rel_path)
            log.debug("%s: a sidecar if its file arrives before it settles", rel_path)
        elif sidecar_of(rel_path) in self._waiting:
            log.info(
                "%s: queued with its sidecar %s, waiting for them to settle",
                rel_path,
                sidecar_of(rel_path),
            )
        else:
            log.info("%s: queued, waiting for it to settle", rel_path)

    def _settled(self, rel_path: str) -> None:
        """A file leaves the queue settled: a drop box `.json` that no file came
        beside is announced now, as the drop of its own it is.

        Called with the lock held.
        """
        if rel_path not in self._unannounced:
            return
        self._unannounced.discard(rel_path)
        if not is_sidecar(self.root, rel_path):
            log.info(
                "%s: queued as a file of its own: no %s beside it to be the sidecar of",
                rel_path,
                rel_path.rpartition("/")[2][: -len(SIDECAR_SUFFIX)],
            )

    def forget(self, rel_path: str) -> None:
        """Stop waiting for a path (it was moved away or deleted)."""
        with self._lock:
            self._waiting.pop(rel_path, None)
            self._unannounced.discard(rel_path)

    def due(self) -> list[str]:
        """Take the files that have settled out of the queue; drop vanished ones."""
        now = self.clock()
        with self._lock:
            candidates = [
                (rel_path, waiting)
                for rel_path, waiting in self._waiting.items()
                if now - waiting.since >= self.settle_seconds
            ]
        settled = []
        for rel_path, waiting in candidates:
            verdict = self._check(rel_path, waiting, now)
            if verdict is not None:
                with self._lock:
                    if self._waiting.get(rel_path) is waiting:
                        del self._waiting[rel_path]
                        if verdict:
                            self._released[rel_path] = replace(waiting, since=now)
                            self._settled(rel_path)
                            settled.append(rel_path)
                        else:
                            self._unannounced.discard(rel_path)
        self._prune_released(now)
        return sorted(settled)

    def _prune_released(self, now: float) -> None:
        with self._lock:
            old = [
                rel_path
                for rel_path, released in self._released.items()
                if now - released.since > RELEASED_TTL_SECONDS
            ]
            for rel_path in old:
                del self._released[rel_path]
            stale = [
                rel_path
                for rel_path, (_, since) in self._placed.items()
                if now - since > RELEASED_TTL_SECONDS
            ]
            for rel_path in stale:
                del self._placed[rel_path]

    def take(self, rel_path: str, size: int, mtime_ns: int) -> bool:
        """Whether a file a pass found may be uploaded now (then it leaves the queue).

        A file the queue does not know joins it if it was modified less than
        `settle_seconds` ago; its wait counts from that modification.
        """
        now = self.clock()
        with self._lock:
            released = self._released.pop(rel_path, None)
            if released is not None and (
                released.size,
                released.mtime_ns,
                released.regular,
            ) == (size, mtime_ns, True):
                return True
            waiting = self._waiting.get(rel_path)
            if waiting is None:
                return self._admit(rel_path, size, mtime_ns, now)
            if (size, mtime_ns, True) != (
                waiting.size,
                waiting.mtime_ns,
                waiting.regular,
            ):
                self._waiting[rel_path] = _Waiting(size, mtime_ns, now)
                return False
            if now - waiting.since < self.settle_seconds:
                return False
        if not self._readable(rel_path) and not self._unreadable_too_long(waiting, now):
            return False
        with self._lock:
            self._waiting.pop(rel_path, None)
            self._settled(rel_path)
        return True

    def _admit(self, rel_path: str, size: int, mtime_ns: int, now: float) -> bool:
        """A file no event announced: settled if its mtime is old enough, else queued.

        Called with the lock held.
        """
        age = self.wall_clock() - mtime_ns / 1e9
        if age >= self.settle_seconds:
            return True
        self._waiting[rel_path] = _Waiting(size, mtime_ns, now - max(age, 0.0))
        self._announce(rel_path)
        return False

    def _check(self, rel_path: str, waiting: _Waiting, now: float) -> bool | None:
        """True: settled; False: vanished; None: keep waiting."""
        seen = self._stat(rel_path)
        if seen is None:
            return False
        if not seen.same(waiting):
            with self._lock:
                if self._waiting.get(rel_path) is waiting:
                    self._waiting[rel_path] = _Waiting(
                        seen.size, seen.mtime_ns, now, seen.regular
                    )
            return None
        if not seen.regular:
            return True  # never opened: a pipe would block, a link leads elsewhere
        if self._readable(rel_path) or self._unreadable_too_long(waiting, now):
            return True
        return None

    def _unreadable_too_long(self, waiting: _Waiting, now: float) -> bool:
        return now - waiting.since >= self.settle_seconds + UNREADABLE_GRACE_SECONDS

    def _stat(self, rel_path: str) -> _Seen | None:
        """What is at a path now; None if nothing, or a folder."""
        try:
            st = os.lstat(self.root / rel_path)
        except OSError:
            return None
        if stat_module.S_ISDIR(st.st_mode):
            return None
        return _Seen(st.st_size, st.st_mtime_ns, stat_module.S_ISREG(st.st_mode))

    def _readable(self, rel_path: str) -> bool:
        # Some writers (and SMB shares) lock a file until they finish with it.
        try:
            with open(self.root / rel_path, "rb"):
                return True
        except OSError:
            return False


def _is_utf8(rel_path: str) -> bool:
    try:
        rel_path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

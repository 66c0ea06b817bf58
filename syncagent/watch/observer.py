"""A watcher per mapping: a watchdog observer (inotify, or polling), its settle queue
and a ticker that hands settled files on and keeps the watch alive."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable

from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from syncagent.config import MappingConfig
from syncagent.engine.filters import PathFilter
from syncagent.engine.scanner import LocalFile
from syncagent.logs import about_mapping
from syncagent.watch.events import EventRouter
from syncagent.watch.paths import printable
from syncagent.watch.settle import SettleQueue

log = logging.getLogger(__name__)

# How often the root's watch is checked (and re-made if it was lost).
HEALTH_SECONDS = 1.0


def poll_interval(settle_seconds: float) -> float:
    """Seconds between two polls of a `watch = "poll"` mapping."""
    return min(max(settle_seconds, 1.0), 10.0)


def tick_interval(settle_seconds: float) -> float:
    """Seconds between two looks at the settle queue."""
    return min(max(settle_seconds / 5, 0.05), 1.0)


class MappingWatcher:
    """Watches one mapping root; calls `on_change(reason)` when a pass should run.

    `mapping` must be the mapping as its passes scan it (drop box folders excluded).
    """

    def __init__(
        self,
        mapping: MappingConfig,
        settle_seconds: float,
        on_change: Callable[[str], None],
        label: str | None = None,
    ) -> None:
        """`label` names the mapping in log lines (None: they need not)."""
        self.root = mapping.local_root
        self.label = label
        self.polling = mapping.watch == "poll"
        self.settle_seconds = settle_seconds
        self.on_change = on_change
        # A drop box's sidecars go with their files; the queue must tell them apart.
        self.queue = SettleQueue(
            self.root, settle_seconds, sidecars=mapping.mode == "dropbox"
        )
        rules = PathFilter(mapping.include, mapping.exclude)
        self.router = EventRouter(self.root, rules, self.queue, self, label=label)
        self._observer: BaseObserver | None = None
        self._lost = False
        # The watched folder itself (device, inode): a watch follows a folder that
        # is moved away, so a new folder at the root's path must be noticed.
        self._watched_id: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._ticker = threading.Thread(
            target=self._tick_loop_about_mapping,
            name=f"settle:{self.root.name}",
            daemon=True,
        )

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start watching (if the root exists; else once it appears)."""
        self._observe()
        self._ticker.start()

    def stop(self) -> None:
        """Stop watching and ticking; safe to call twice."""
        self._stop.set()
        self._drop_observer()
        if self._ticker.is_alive() and threading.current_thread() is not self._ticker:
            self._ticker.join(timeout=5)

    @property
    def watching(self) -> bool:
        """Whether an observer is watching the root now."""
        return self._healthy()

    # -- what passes ask ------------------------------------------------------

    def defer(self, local: LocalFile) -> bool:
        """Whether a pass must leave this file for later: it has not settled yet."""
        return not self.queue.take(local.rel_path, local.size, local.mtime_ns)

    # -- what the router reports ---------------------------------------------

    def request_pass(self, reason: str) -> None:
        """Forward a change to the agent."""
        self.on_change(reason)

    def root_lost(self) -> None:
        """The root was deleted: stop the observer; the ticker re-makes the watch."""
        log.warning(
            "%s: the mapping folder is gone; watching it again once it is back",
            self.root,
        )
        self._lost = True

    # -- inside -----------------------------------------------------------------

    def _observe(self) -> None:
        if not self.root.is_dir():
            if not self._lost:
                log.warning(
                    "%s: the mapping folder does not exist; waiting for it", self.root
                )
            self._lost = True
            return
        observer = self._new_observer()
        try:
            observer.schedule(self.router, str(self.root), recursive=True)
            observer.start()
        except OSError as exc:
            if self.polling or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            log.warning(
                "%s: inotify limit reached (%s); polling this folder instead",
                self.root,
                exc.strerror,
            )
            self.polling = True
            observer = self._new_observer()
            observer.schedule(self.router, str(self.root), recursive=True)
            observer.start()
        self._observer = observer
        self._lost = False
        self._watched_id = self._root_id()
        log.info(
            "%s: watching (%s)",
            self.root,
            "polling" if self.polling else "native events",
        )

    def _new_observer(self) -> BaseObserver:
        if self.polling:
            return PollingObserver(timeout=poll_interval(self.settle_seconds))
        return Observer()

    def _drop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if threading.current_thread() is not observer:
                observer.join(timeout=5)

    def _healthy(self) -> bool:
        observer = self._observer
        if observer is None or self._lost or not observer.is_alive():
            return False
        emitters = observer.emitters
        if not (emitters and all(e.is_alive() for e in emitters)):
            return False
        now = self._root_id()
        if now is not None and now != self._watched_id:
            log.warning(
                "%s: the mapping folder was replaced (moved away and made again?); "
                "watching the folder now at that path",
                self.root,
            )
            return False
        return True

    def _root_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.root)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _tick_loop_about_mapping(self) -> None:
        with about_mapping(self.label):
            self._tick_loop()

    def _tick_loop(self) -> None:
        tick = tick_interval(self.settle_seconds)
        since_health = 0.0
        while not self._stop.wait(tick):
            try:
                self._hand_on_settled()
                since_health += tick
                if since_health >= HEALTH_SECONDS:
                    since_health = 0.0
                    self._keep_watching()
            except Exception:
                log.exception("%s: watcher tick failed; going on", self.root)

    def _hand_on_settled(self) -> None:
        settled = self.queue.due()
        for rel_path in settled:
            log.debug("%s: settled", printable(rel_path))
        if settled:
            self.on_change("settled")

    def _keep_watching(self) -> None:
        if self._healthy() or self._stop.is_set():
            return
        was_watching = self._observer is not None
        self._drop_observer()
        if was_watching:
            log.warning("%s: the watch was lost; watching again", self.root)
        self._observe()
        if self._observer is not None:
            self.on_change("watch restored")

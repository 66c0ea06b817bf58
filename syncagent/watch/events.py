"""Turn watchdog events into settle-queue updates and requests for a pass.

Writes put a file in the settle queue (links, pipes, devices and names that are not
UTF-8 too, so that a pass soon reports them). Deletions and moves ask for a pass at
once: the pass sees the move (same inode, size and mtime) and renames the asset
instead of uploading it again. A new folder is walked into the queue, since files may
land in it before its watch exists; lost events ask for a full rescan.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

from watchdog.events import (
    EVENT_TYPE_ATTRIB,
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_EVENTS_LOST,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)

from syncagent.engine.filters import PathFilter
from syncagent.engine.names import AGENT_PREFIX
from syncagent.logs import about_mapping
from syncagent.watch.paths import is_watched, printable, relative_path
from syncagent.watch.settle import SettleQueue

log = logging.getLogger(__name__)

# Bounds the walk of one new folder; anything beyond is left to the pass it triggers.
MAX_WALK_FILES = 100_000


class WatchOwner(Protocol):
    """What the event handler reports to."""

    def request_pass(self, reason: str) -> None:
        """Something changed that a pass must look at."""

    def root_lost(self) -> None:
        """The watched root itself went away."""


class EventRouter(FileSystemEventHandler):
    """The watchdog handler of one mapping; never raises into the observer thread."""

    def __init__(
        self,
        root: Path,
        rules: PathFilter,
        queue: SettleQueue,
        owner: WatchOwner,
        *,
        label: str | None = None,
    ) -> None:
        self.root = root
        self.rules = rules
        self.queue = queue
        self.owner = owner
        self.label = label

    def dispatch(self, event: FileSystemEvent) -> None:
        """Route one event; an error costs a rescan, never the watch."""
        with about_mapping(self.label):
            try:
                self.route(event)
            except Exception:
                log.exception("%s: cannot handle a file event; rescanning", self.root)
                self.owner.request_pass("an event could not be handled")

    def route(self, event: FileSystemEvent) -> None:
        """Route one event (may raise)."""
        kind = event.event_type
        if kind == EVENT_TYPE_EVENTS_LOST:
            log.warning("%s: file events were lost; rescanning", self.root)
            self.owner.request_pass("events lost")
        elif kind == EVENT_TYPE_MOVED:
            self._moved(event)
        elif kind == EVENT_TYPE_DELETED:
            self._deleted(event)
        elif kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_ATTRIB):
            self._written(event)
        elif kind == EVENT_TYPE_CLOSED and not event.is_directory:
            # Closed after writing: a file a pass left because a program still had
            # it open for writing (a render, a recording) goes up once it settles,
            # not at the pass's retry. Opening, and closing without a write (the
            # agent's own reads among them), carry nothing new.
            self._written(event)

    def _written(self, event: FileSystemEvent) -> None:
        rel_path = relative_path(self.root, event.src_path)
        if rel_path is None or not self._watched(rel_path, event.is_directory):
            return
        if not event.is_directory:
            self.queue.touch(rel_path)
        elif event.event_type == EVENT_TYPE_CREATED:
            self.walk_into_queue(rel_path)
            self.owner.request_pass("new folder")

    def _deleted(self, event: FileSystemEvent) -> None:
        if os.fsdecode(event.src_path) == str(self.root):
            self.owner.root_lost()
            return
        rel_path = relative_path(self.root, event.src_path)
        if rel_path is None:
            return
        self.queue.forget(rel_path)
        if self._watched(rel_path, event.is_directory):
            log.debug("%s: deleted", printable(rel_path))
            self.owner.request_pass("deleted")

    def _moved(self, event: FileSystemEvent) -> None:
        src = relative_path(self.root, event.src_path)
        dest = relative_path(self.root, event.dest_path)
        if src is not None:
            self.queue.forget(src)
        pulled = src is not None and src.rpartition("/")[2].startswith(AGENT_PREFIX)
        if pulled and dest is not None and not event.is_directory:
            self.queue.placed(dest)  # a pull's download put in place
        src_watched = src is not None and self._watched(src, event.is_directory)
        dest_watched = dest is not None and self._watched(dest, event.is_directory)
        if src is not None and dest is not None and dest_watched and src_watched:
            log.debug("%s: moved to %s", printable(src), printable(dest))
        if src_watched or dest_watched:
            self.owner.request_pass("moved")

    def _watched(self, rel_path: str, is_dir: bool) -> bool:
        return is_watched(self.rules, rel_path, is_dir=is_dir)

    def walk_into_queue(self, rel_dir: str) -> None:
        """Queue every watched file under a new folder (its events may have been
        missed while its watch was being set up)."""
        count = 0
        for directory, dirs, names in os.walk(self.root / rel_dir):
            rel_here = relative_path(self.root, directory)
            if rel_here is None:
                return
            dirs[:] = [d for d in dirs if self._watched(f"{rel_here}/{d}", True)]
            for name in names:
                rel_path = f"{rel_here}/{name}"
                if self._watched(rel_path, False):
                    self.queue.touch(rel_path)
                    count += 1
                if count >= MAX_WALK_FILES:
                    return

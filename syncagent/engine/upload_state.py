"""The state the steps of an upload pass share: its settings, its collaborators and
what it has done so far."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection

from syncagent.compass import CompassClient
from syncagent.config import MappingConfig
from syncagent.engine.filters import PathFilter
from syncagent.engine.hooks import AssetDescription, PassHooks
from syncagent.engine.planner import Rename
from syncagent.engine.progress import Progress
from syncagent.engine.report import PassReport
from syncagent.engine.scanner import LocalFile, LocalTree
from syncagent.engine.upload import Uploader
from syncagent.ledger import EntryRecord, FailureRecord, Ledger


class UploadPassState:
    """One upload pass's settings and running record; its steps build on it."""

    def __init__(
        self,
        *,
        mapping: MappingConfig,
        mapping_id: int,
        client: CompassClient,
        ledger: Ledger,
        uploader: Uploader,
        owner: str,
        concurrency: int,
        progress: Progress,
        hooks: PassHooks | None = None,
        dry_run: bool = False,
        defer: Callable[[LocalFile], bool] | None = None,
        deferred_reason: str | None = None,
        stop: threading.Event | None = None,
        configured_roots: Collection[str] = (),
        watched: bool = False,
    ) -> None:
        self.mapping = mapping
        self.root = mapping.local_root
        self.mapping_id = mapping_id
        self.client = client
        self.ledger = ledger
        self.uploader = uploader
        self.owner = owner
        self.concurrency = concurrency
        self.progress = progress
        self.hooks = hooks or PassHooks()
        self.dry_run = dry_run
        # The agent defers files still settling, and stops taking new files on shutdown.
        self.defer = defer
        # Set when nothing will take deferred files later in this process (a
        # one-shot sync): they are reported, with this reason, for the next run.
        self.deferred_reason = deferred_reason
        self.stop = stop or threading.Event()
        # Under a watch, a file gone before it went up is no failure: the watch saw
        # it deleted or renamed, and the next pass takes it from there.
        self.watched = watched
        self.rules = PathFilter(mapping.include, mapping.exclude)
        self.report = PassReport(str(self.root), mapping.folder_id)
        self._moves: list[Rename] = []
        self._resumed: set[str] = set()
        self._twins: dict[str, EntryRecord] = {}
        self._first_look = LocalTree()
        """The pass's scan, for the second look before deletions."""
        self._verified: set[str] = set()
        # Whether a stop left some of the planned work for the next pass.
        self.cut_short = False
        self.configured_roots = set(configured_roots) | {str(self.root)}
        self._halted = threading.Event()
        self._descriptions: dict[str, AssetDescription] = {}
        self._lock = threading.Lock()
        # The failures recorded before this pass: those that come again on an
        # unchanged file are not warned about again.
        self._known_failures: dict[str, FailureRecord] = {}

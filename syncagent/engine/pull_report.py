"""What a pull did: the counters of an upload report plus the pull's own."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncagent.engine.report import FailedItem, PassReport


@dataclass
class PullReport(PassReport):
    """The outcome of one pull over one mapping; safe to update from worker threads.

    `notices` are things to know that are not failures: archived assets skipped,
    conflicts kept, files kept because they changed here.
    """

    kind: str = "pull"
    downloaded: int = 0
    updated: int = 0
    restored: int = 0
    conflicts: int = 0
    trashed: int = 0
    withheld: int = 0
    folders_moved: int = 0
    folders_removed: int = 0
    proxies: int = 0
    proxies_removed: int = 0
    bytes_received: int = 0
    notices: list[FailedItem] = field(default_factory=list)

    def notice(self, rel_path: str, reason: str) -> None:
        """Record something a user should know that did not fail."""
        with self._lock:
            self.notices.append(FailedItem(rel_path, reason, permanent=False))

"""What a pass did: counts, bytes, failures with their reasons."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FailedItem:
    """One path that did not sync, and why."""

    rel_path: str
    reason: str
    permanent: bool


@dataclass
class PassReport:
    """The outcome of one pass over one mapping; safe to update from worker threads."""

    local_root: str
    folder_id: int
    kind: str = "upload"
    uploaded: int = 0
    adopted: int = 0
    revised: int = 0
    touched: int = 0
    renamed: int = 0
    moved: int = 0
    unchanged: int = 0
    forgotten: int = 0
    removed: int = 0
    folders_created: int = 0
    moved_to_done: int = 0
    """Drop boxes: verified files moved to done/ (after_ingest = "move")."""
    deleted_after_upload: int = 0
    """Drop boxes: verified files deleted (after_ingest = "delete")."""
    awaiting_pull: int = 0
    """Two-way: changed files left for the next pull, which must bring what
    changed in Compass first (another version, another name)."""
    bytes_sent: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    failures: list[FailedItem] = field(default_factory=list)
    planned: list[tuple[str, str]] = field(default_factory=list)
    fatal: str | None = None
    fatal_logged: bool = False
    """Whether the pass logged its fatal reason itself, the moment it stopped."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def count(self, what: str, amount: int = 1) -> None:
        """Add to one of the counters."""
        with self._lock:
            setattr(self, what, getattr(self, what) + amount)

    def fail(self, rel_path: str, reason: str, *, permanent: bool) -> None:
        """Record a path that did not sync."""
        with self._lock:
            self.failures.append(FailedItem(rel_path, reason, permanent))

    @property
    def ok(self) -> bool:
        """Whether everything in the mapping is in sync after this pass."""
        return self.fatal is None and not self.failures

    @property
    def outcome(self) -> str:
        """'ok', 'failures' (some items failed) or 'error' (the pass could not run)."""
        if self.fatal is not None:
            return "error"
        return "failures" if self.failures else "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        data = {
            k: v
            for k, v in asdict(self).items()
            if not k.startswith("_") and k != "fatal_logged"
        }
        data["failures"] = [asdict(f) for f in sorted(self.failures, key=_by_path)]
        data["planned"] = [{"action": a, "path": p} for a, p in self.planned]
        data["outcome"] = self.outcome
        return data


def _by_path(item: FailedItem) -> str:
    return item.rel_path

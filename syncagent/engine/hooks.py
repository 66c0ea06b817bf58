"""Hooks a mapping's mode plugs into an upload pass; the defaults do nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncagent.engine.scanner import LocalFile


@dataclass(frozen=True)
class AssetDescription:
    """Metadata given to a new asset when it is created."""

    custom_metadata_fields: list[dict[str, Any]] = field(default_factory=list)
    titles: list[dict[str, Any]] = field(default_factory=list)


class PassHooks:
    """Called by an upload pass around each file; subclass to change what happens.

    Methods run on worker threads and must be thread-safe.
    """

    def holds(self, local: LocalFile) -> bool:
        """Whether a file never goes up on its own (it travels with another)."""
        del local
        return False

    def describe(self, rel_path: str) -> AssetDescription:
        """Metadata for a new file's asset; raise FileProblem to refuse the file."""
        del rel_path
        return AssetDescription()

    def synced(self, rel_path: str, asset_id: int) -> None:
        """A file was verified in Compass and recorded."""

    def failed(self, rel_path: str, reason: str, *, permanent: bool) -> None:
        """A file did not sync; `permanent` if retrying as is cannot help."""

    def left(self) -> dict[str, int]:
        """Report counters of the files that what comes after verification took
        out of the folder (a drop box's moves and deletes), since these hooks
        began."""
        return {}

    def stuck(self) -> list[tuple[str, str]]:
        """Files verified in Compass that what comes after could not finish with
        during this pass (a drop box's move or delete), with the reason: they count
        as failed in the pass's summary."""
        return []

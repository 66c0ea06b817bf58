"""Progress events from the engine to a display; the CLI decides how to show them."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress events from worker threads; must be thread-safe and quick."""

    def files_planned(self, count: int, total_bytes: int) -> None:
        """A pass has this much to transfer."""

    def bytes_sent(self, count: int) -> None:
        """Bytes of a part were accepted by Compass."""

    def file_done(self, rel_path: str, outcome: str) -> None:
        """A file reached an outcome: uploaded, revised, failed, ..."""


class NoProgress:
    """Progress that shows nothing."""

    def files_planned(self, count: int, total_bytes: int) -> None:
        """Ignore."""

    def bytes_sent(self, count: int) -> None:
        """Ignore."""

    def file_done(self, rel_path: str, outcome: str) -> None:
        """Ignore."""

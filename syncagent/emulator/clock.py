"""The emulator's clock: wall time plus an offset that tests can move forward."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time shifted by an adjustable offset (for expiry tests)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the emulator's current time in seconds since the epoch."""
        return time.time() + self._offset

    def now_ms(self) -> int:
        """Return the emulator's current time in whole milliseconds."""
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds`; return the new total offset."""
        with self._lock:
            self._offset += seconds
            return self._offset


def iso_from_ms(epoch_ms: int | None) -> str | None:
    """Format epoch milliseconds as the reference does: 2017-04-26T21:26:47.675Z."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def ms_from_iso(text: str) -> int:
    """Parse an ISO 8601 time (naive means UTC) into epoch milliseconds."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)

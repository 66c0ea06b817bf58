"""Counters the tests read through /_emulator/stats: calls per route, bytes moved."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Thread-safe counters of requests by route and of transfer bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._totals: Counter[str] = Counter()

    def count_request(self, route: str) -> None:
        """Count one request to `route` ('METHOD /path/{param}')."""
        with self._lock:
            self._requests[route] += 1

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the total `name` (e.g. part_bytes_received)."""
        with self._lock:
            self._totals[name] += amount

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as JSON-ready data."""
        with self._lock:
            data: dict[str, Any] = {
                "requests": dict(sorted(self._requests.items())),
                "part_uploads": 0,
                "part_bytes_received": 0,
                "downloads": 0,
                "download_bytes_sent": 0,
            }
            data.update(self._totals)
            return data

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._requests.clear()
            self._totals.clear()

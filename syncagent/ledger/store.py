"""The ledger: the one owner of sync state, behind plain-record methods.

Its parts live beside it: entries (mappings and the synced tree), uploads (work in
flight), activity (failures, passes, agents) and pull state; this module joins them.
"""

from __future__ import annotations

from syncagent.ledger.activity import ActivityMixin
from syncagent.ledger.base import (
    LedgerError,
    LedgerUnavailable,
    MappingBusy,
    create_ledger_engine,
    upgrade_ledger,
    utcnow,
)
from syncagent.ledger.entries import EntriesMixin
from syncagent.ledger.pulls import PullStateMixin
from syncagent.ledger.uploads import UploadsMixin

__all__ = [
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "MappingBusy",
    "create_ledger_engine",
    "upgrade_ledger",
    "utcnow",
]


class Ledger(PullStateMixin, UploadsMixin, ActivityMixin, EntriesMixin):
    """Sync state in a SQLAlchemy database; migrated to the newest schema on open."""

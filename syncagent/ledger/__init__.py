"""The ledger: the synced tree and the work in flight, in any SQLAlchemy database."""

from syncagent.ledger.records import (
    AgentInfo,
    EntryRecord,
    FailureRecord,
    PassSummary,
    UploadRecord,
    UploadStart,
)
from syncagent.ledger.store import (
    Ledger,
    LedgerError,
    LedgerUnavailable,
    MappingBusy,
    upgrade_ledger,
    utcnow,
)

__all__ = [
    "AgentInfo",
    "EntryRecord",
    "FailureRecord",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "MappingBusy",
    "PassSummary",
    "UploadRecord",
    "UploadStart",
    "upgrade_ledger",
    "utcnow",
]

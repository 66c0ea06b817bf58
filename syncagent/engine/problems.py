"""Per-file problems on the local side, classed by whether retrying can help."""

from __future__ import annotations

from syncagent.ledger import FailureRecord


class FileProblem(Exception):
    """A local file cannot be synced now; `permanent` if retrying as is cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class FileChanged(FileProblem):
    """The file changed while it was read; it goes up again once it holds still."""

    def __init__(self, what: str = "changed while being uploaded") -> None:
        reason = f"{what}; not recorded as synced, retried once it holds still"
        super().__init__(reason, permanent=False)


class FileVanished(FileProblem):
    """The file was deleted or moved away before it could be uploaded."""

    def __init__(self) -> None:
        reason = "deleted or moved away before it was uploaded"
        super().__init__(reason, permanent=False)


class UploadStopped(FileProblem):
    """The run was asked to stop in the middle of this file's upload."""

    def __init__(self) -> None:
        reason = "stopped before its upload finished; resumes from the parts sent"
        super().__init__(reason, permanent=False)


def reported_before(
    known: FailureRecord | None, reason: str, changed_ns: int | None
) -> bool:
    """Whether an upload failure is the one the ledger holds already, on a path
    unchanged since (its ctime, `changed_ns`, is older than the last record).

    Such a failure is warned about once per change of its file, not at every pass
    (a file a program keeps open for writing would warn at every retry); it stays
    listed as failed all the same. A path whose change time is unknown is taken as
    changed.
    """
    if known is None or known.operation != "upload":
        return False
    if known.reason != reason or changed_ns is None:
        return False
    return changed_ns < known.last_seen.timestamp() * 1e9

"""Per-file problems on the local side, classed by whether retrying can help."""

from __future__ import annotations


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

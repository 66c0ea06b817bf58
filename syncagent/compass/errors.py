"""Errors raised by the Compass client, classed by what the caller should do next.

    CompassError
    ├── TransientError          retry later: the server or the network failed
    │   ├── AmbiguousResult     a non-idempotent call may or may not have taken effect
    │   └── CompassUnreachable  no connection at all: stop starting new work
    ├── RequestRejected         this item cannot succeed as asked; record it, go on
    │   ├── InvalidRequest      400, 422: the request or its parameters are wrong
    │   ├── PermissionDenied    403: the user lacks the folder permission
    │   ├── NotFound            404, 410: the record does not exist (any more)
    │   └── UrlExpired          a presigned part or download URL has expired
    ├── IntegrityError          bytes arrived but their checksum does not match
    └── AuthenticationFailed    bad credentials, or fresh tokens refused: fatal

Transport errors and status codes are translated into this tree once, in
`syncagent.compass.transport`; nothing else in the project sees httpx exceptions.
"""

from __future__ import annotations


class CompassError(Exception):
    """Base class of every error the Compass client raises."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientError(CompassError):
    """The call failed for a reason that may pass: retry it later."""


class AmbiguousResult(TransientError):
    """The call was sent but its outcome is unknown; the caller must reconcile."""


class CompassUnreachable(TransientError):
    """No attempt got a connection to Compass: it is down or the network is."""


class RequestRejected(CompassError):
    """The server refused this request; repeating it unchanged will fail again."""


class InvalidRequest(RequestRejected):
    """400 or 422: the parameters were refused."""


class PermissionDenied(RequestRejected):
    """403: the user lacks the permission this call needs."""


class NotFound(RequestRejected):
    """404 or 410: the record does not exist or was removed."""


class UrlExpired(RequestRejected):
    """A presigned URL was refused as expired or invalid; ask for a new one."""


class IntegrityError(CompassError):
    """Bytes were transferred but their checksum does not match what was expected."""


class AuthenticationFailed(CompassError):
    """The credentials were refused: nothing will work until they are fixed."""

"""The HTTP plumbing of the API routes: errors, JSON bodies, auth and counting."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.tokens import TokenError
from syncagent.emulator.users import Account

if TYPE_CHECKING:
    from syncagent.emulator.context import EmulatorContext

logger = logging.getLogger(__name__)

_MAX_JSON_BYTES = 16 << 20
OUT_OF_RANGE = "a number in the request is out of range (at most 9223372036854775807)"


class ApiError(Exception):
    """An error answered as {"errors": [...]} with the reference's status codes."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)


def error_response(status: int, *messages: str) -> JSONResponse:
    """Return the reference's error body for `status`."""
    return JSONResponse({"errors": list(messages)}, status_code=status)


def not_found(what: str) -> ApiError:
    """Return the 404 for a record that does not exist."""
    return ApiError(404, f"{what} not found")


@dataclass
class Call:
    """One API request as a handler sees it: who, what body, which context."""

    request: Request
    ctx: EmulatorContext
    user: Account | None
    body: Any

    @property
    def user_id(self) -> int:
        """The authenticated user's ID (only for authenticated routes)."""
        assert self.user is not None
        return self.user.id

    @property
    def base_url(self) -> str:
        """Scheme and host the client used, for absolute presigned URLs."""
        return f"{self.request.url.scheme}://{self.request.headers.get('host', '')}"

    def path_int(self, name: str) -> int:
        """Return an integer path parameter (404 when it is not a number)."""
        try:
            return int(self.request.path_params[name])
        except ValueError:
            raise not_found("record") from None


Handler = Callable[[Call], Awaitable[Response]]


def api_route(method: str, path: str, handler: Handler, *, auth: bool = True) -> Route:
    """Wrap `handler` with counting, auth, JSON parsing and error answers."""
    route_name = f"{method} {path}"

    async def endpoint(request: Request) -> Response:
        ctx: EmulatorContext = request.app.state.ctx
        ctx.stats.count_request(route_name)
        user: Account | None = None
        # First, so that whatever this call reads or changes sees every ingest due.
        ctx.ingests.settle_due(ctx)
        try:
            if auth:
                user = _authenticate(request, ctx)
            body = await _read_json(request) if method in ("POST", "PUT") else None
            response = await handler(Call(request, ctx, user, body))
        except ApiError as exc:
            response = error_response(exc.status, *exc.messages)
        except OverflowError:
            # An ID or number past 64 bits cannot name any record nor fit any
            # field: the request is invalid, not the server broken.
            response = error_response(422, OUT_OF_RANGE)
        if user is not None:
            response.headers["authorization-refresh-data"] = ctx.tokens.refresh_data(
                user.id
            )
        return response

    return Route(path, endpoint, methods=[method], name=route_name)


def _authenticate(request: Request, ctx: EmulatorContext) -> Account:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token in the authorization header")
    try:
        user_id = ctx.tokens.verify(token.strip())
    except TokenError as exc:
        raise ApiError(401, str(exc)) from None

    user = ctx.accounts.get(user_id)
    if user is None:
        raise ApiError(401, "the token's user no longer exists")
    return user


async def _read_json(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(400, "content-type must be application/json")

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_JSON_BYTES:
        raise ApiError(400, "request body is too large")
    try:
        raw = await request.body()
    except ClientDisconnect:
        # A client stopped (killed) while sending: nobody is left to answer, and
        # it is no fault of the server's.
        logger.debug("%s: the client left before its body arrived", request.url.path)
        raise ApiError(
            400, "the connection closed before the request body arrived"
        ) from None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "request body is not valid JSON") from None
    if b"\\u" in raw and not _is_unicode(body):
        # JSON lets "\ud800" through; no name or text of Compass can hold it.
        raise ApiError(
            422,
            "request body holds text that is not valid Unicode (an unpaired "
            "surrogate escape such as \\ud800)",
        )
    return body


def _is_unicode(body: Any) -> bool:
    """Whether every string in a decoded JSON body is valid Unicode."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def created(data: Any) -> JSONResponse:
    """Return a 201 Created JSON response."""
    return JSONResponse(data, status_code=201)


def no_content() -> Response:
    """Return a 204 No Content response."""
    return Response(status_code=204)

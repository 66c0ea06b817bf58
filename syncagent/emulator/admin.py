"""Test helpers under /_emulator/ (not Compass; loopback clients only, else 404).

    POST   /_emulator/users
           {"name": N, "password": P, "permissions": {"FOLDER_ID": GRANT, ...}}
           creates the user (or sets its password) with those permissions
    PUT    /_emulator/users/NAME/permissions/FOLDER_ID   body: GRANT
           the user then holds exactly GRANT on that folder
    GET    /_emulator/stats            requests by route, part and download bytes
    DELETE /_emulator/stats            reset the counters
    GET    /_emulator/clock            the clock's offset from wall time
    POST   /_emulator/clock            {"advance": SECONDS}: expire tokens and URLs,
                                       finish and expire restores from archive
    GET    /_emulator/idle?timeout=S   wait until no proxy generation is pending
    GET|PUT|DELETE /_emulator/faults   the fault plan (see faults.py)

A GRANT is "all", a list of permission names, or {name: bool}. Permission names:
admin, asset_delete, download, folder_delete, folder_manage, share, upload, view,
watermark.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.access import load_folder
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.users import find_user, parse_grant, set_permission, upsert_user
from syncagent.emulator.web import ApiError, error_response

AdminHandler = Callable[[Request, EmulatorContext], Awaitable[Response]]


def is_loopback(request: Request) -> bool:
    """True when the client connected from a loopback address."""
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def admin_route(method: str, path: str, handler: AdminHandler) -> Route:
    """Wrap a helper: loopback only, ApiError answered as JSON."""

    async def endpoint(request: Request) -> Response:
        if not is_loopback(request):
            return error_response(404, "not found")
        try:
            return await handler(request, request.app.state.ctx)
        except ApiError as exc:
            return error_response(exc.status, *exc.messages)

    return Route(path, endpoint, methods=[method])


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None


def _grant(value: Any) -> set[str]:
    try:
        return parse_grant(value)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


async def create_user(request: Request, ctx: EmulatorContext) -> Response:
    """Create (or re-password) a user with the given per-folder permissions."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise ApiError(422, "request body must be a JSON object")
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not name or not isinstance(password, str):
        raise ApiError(422, "name and password are required strings")
    grants = body.get("permissions", {})
    if not isinstance(grants, dict):
        raise ApiError(422, "permissions must map folder IDs to grants")

    with ctx.sessions.begin() as session:
        user = upsert_user(session, name, password)
        result = {}
        for folder_key, grant in grants.items():
            folder = load_folder(session, _folder_id(folder_key))
            row = set_permission(session, user.id, folder.id, _grant(grant))
            result[str(folder.id)] = row.flags()
    return JSONResponse({"id": user.id, "name": name, "permissions": result}, 201)


def _folder_id(text: Any) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ApiError(422, f"not a folder ID: {text!r}") from None


async def set_user_permissions(request: Request, ctx: EmulatorContext) -> Response:
    """Set exactly the permissions a user holds on one folder."""
    granted = _grant(await _json(request))
    folder_id = _folder_id(request.path_params["folder_id"])
    with ctx.sessions.begin() as session:
        user = find_user(session, request.path_params["name"])
        if user is None:
            raise ApiError(404, f"user {request.path_params['name']} not found")
        load_folder(session, folder_id)
        flags = set_permission(session, user.id, folder_id, granted).flags()
    return JSONResponse({**flags, "folder_id": folder_id})


async def read_stats(request: Request, ctx: EmulatorContext) -> Response:
    """Answer the request and byte counters."""
    return JSONResponse(ctx.stats.snapshot())


async def reset_stats(request: Request, ctx: EmulatorContext) -> Response:
    """Zero the counters."""
    ctx.stats.reset()
    return Response(status_code=204)


async def read_clock(request: Request, ctx: EmulatorContext) -> Response:
    """Answer the emulator's time and its offset from the wall clock."""
    return JSONResponse({"now": ctx.clock.now(), "offset": ctx.clock.advance(0)})


async def advance_clock(request: Request, ctx: EmulatorContext) -> Response:
    """Move the emulator's clock forward (tokens, URLs and restores go by it)."""
    body = await _json(request)
    seconds = body.get("advance") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ApiError(422, "advance must be a number of seconds, at least 0")
    offset = ctx.clock.advance(float(seconds))
    return JSONResponse({"now": ctx.clock.now(), "offset": offset})


async def wait_idle(request: Request, ctx: EmulatorContext) -> Response:
    """Wait (up to ?timeout= seconds, default 30) for proxy generation to finish."""
    try:
        timeout = min(float(request.query_params.get("timeout", "30")), 300.0)
    except ValueError:
        raise ApiError(422, "timeout must be a number of seconds") from None
    idle = await asyncio.to_thread(ctx.proxy_jobs.wait_idle, timeout)
    return JSONResponse({"idle": idle, "pending": ctx.proxy_jobs.pending})


def routes() -> list[Route]:
    """The /_emulator/ helper routes (faults are served by the fault injector)."""
    return [
        admin_route("POST", "/_emulator/users", create_user),
        admin_route(
            "PUT",
            "/_emulator/users/{name}/permissions/{folder_id}",
            set_user_permissions,
        ),
        admin_route("GET", "/_emulator/stats", read_stats),
        admin_route("DELETE", "/_emulator/stats", reset_stats),
        admin_route("GET", "/_emulator/clock", read_clock),
        admin_route("POST", "/_emulator/clock", advance_clock),
        admin_route("GET", "/_emulator/idle", wait_idle),
    ]

"""The emulator's ASGI application: every route, error answers, fault injection."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from syncagent.emulator import (
    admin,
    api_archive,
    api_assets,
    api_auth,
    api_bulk_update,
    api_downloads,
    api_folders,
    api_search,
    api_uploads,
    multipart,
    s3,
)
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.faults import FaultInjector, FaultPlan
from syncagent.emulator.web import error_response

logger = logging.getLogger(__name__)


def build_app(ctx: EmulatorContext, faults: str | None = None) -> ASGIApp:
    """Return the emulator app for `ctx`, wrapped by the fault injector."""
    # Routes are tried in order; the busiest go first. Only /api/v1/asset_items/
    # paths overlap (by method), and those keep their order.
    routes = [
        *s3.routes(),
        *multipart.routes(),
        *api_uploads.routes(),
        *api_bulk_update.routes(),
        *api_assets.routes(),
        *api_archive.routes(),
        *api_auth.routes(),
        *api_folders.routes(),
        *api_search.routes(),
        *api_downloads.routes(),
        *admin.routes(),
    ]
    inner = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    inner.state.ctx = ctx
    plan = FaultPlan.parse(faults) if faults else FaultPlan()
    return FaultInjector(inner, plan)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/s3/"):
        if exc.status_code == 405:
            return s3.s3_error(
                405, "MethodNotAllowed", "The specified method is not allowed"
            )
        return s3.s3_error(404, "NoSuchKey", "The specified key does not exist.")
    if exc.status_code == 405:
        return error_response(405, f"{request.method} is not allowed on this route")
    return error_response(exc.status_code, "not found")


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error(
        "%s %s: unhandled error", request.method, request.url.path, exc_info=exc
    )
    return error_response(500, "internal server error")

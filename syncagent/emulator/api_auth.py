"""POST /api/v1/authenticate: a username and password for a JWT access token."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncagent.emulator.users import find_user, password_matches
from syncagent.emulator.validate import as_object, get_str
from syncagent.emulator.web import ApiError, Call, api_route


async def authenticate(call: Call) -> Response:
    """Check the credentials; answer the access token and its expiry."""
    body = as_object(call.body)
    username = get_str(body, "username")
    password = body.get("password")
    if not isinstance(password, str):
        raise ApiError(422, "password is required and must be a string")

    with call.ctx.sessions() as session:
        user = find_user(session, username)
    if user is None or not password_matches(password, user.password_hash):
        raise ApiError(401, "invalid username or password")

    token, expires_at = call.ctx.tokens.issue(user.id)
    return JSONResponse({"access_token": token, "expires_at": expires_at})


def routes() -> list[Route]:
    """The authentication routes."""
    return [api_route("POST", "/api/v1/authenticate", authenticate, auth=False)]

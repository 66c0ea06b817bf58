"""Access tokens: HS256 JWTs carrying user_id and expires_at, as the reference shows."""

from __future__ import annotations

import json

import jwt

from syncagent.emulator.clock import Clock


class TokenError(Exception):
    """The token is missing, malformed, badly signed or expired."""


class TokenIssuer:
    """Issues and checks access tokens against the emulator's clock."""

    def __init__(self, key: bytes, clock: Clock, ttl: float) -> None:
        self._key = key
        self._clock = clock
        self._ttl = ttl

    def issue(self, user_id: int) -> tuple[str, int]:
        """Return a fresh token for `user_id` and its expiry (epoch seconds)."""
        expires_at = int(self._clock.now() + self._ttl)
        claims = {"user_id": user_id, "expires_at": expires_at}
        token = jwt.encode(claims, self._key, algorithm="HS256", headers={"typ": None})
        return token, expires_at

    def verify(self, token: str) -> int:
        """Return the user ID of a valid token; raise TokenError otherwise."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise TokenError("invalid access token") from exc

        user_id = claims.get("user_id")
        expires_at = claims.get("expires_at")
        if not isinstance(user_id, int) or not isinstance(expires_at, int | float):
            raise TokenError("invalid access token")
        if expires_at <= self._clock.now():
            raise TokenError("access token has expired")
        return user_id

    def refresh_data(self, user_id: int) -> str:
        """Return the authorization-refresh-data header value for `user_id`."""
        token, expires_at = self.issue(user_id)
        return json.dumps(
            {"access_token": token, "expires_at": expires_at}, separators=(",", ":")
        )

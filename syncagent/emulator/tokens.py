"""Access tokens: HS256 JWTs carrying user_id and expires_at, as the reference shows."""

from __future__ import annotations

import json

import jwt

from syncagent.emulator.clock import Clock

_MAX_REMEMBERED = 4096


class TokenError(Exception):
    """The token is missing, malformed, badly signed or expired."""


class TokenIssuer:
    """Issues and checks access tokens against the emulator's clock.

    Both directions are remembered: a token whose signature checked out once is
    not decoded again (its expiry is still checked on every use), and the refresh
    header of a user is reused while its expiry second is the same. A token is a
    pure function of its claims, so the answers are exactly what fresh work gives.
    """

    def __init__(self, key: bytes, clock: Clock, ttl: float) -> None:
        self._key = key
        self._clock = clock
        self._ttl = ttl
        self._verified: dict[str, tuple[int, float]] = {}
        self._refresh: dict[int, tuple[int, str]] = {}

    def issue(self, user_id: int) -> tuple[str, int]:
        """Return a fresh token for `user_id` and its expiry (epoch seconds)."""
        expires_at = int(self._clock.now() + self._ttl)
        return self._encode(user_id, expires_at), expires_at

    def verify(self, token: str) -> int:
        """Return the user ID of a valid token; raise TokenError otherwise."""
        known = self._verified.get(token)
        user_id, expires_at = known if known else self._decode(token)
        if expires_at <= self._clock.now():
            raise TokenError("access token has expired")
        return user_id

    def refresh_data(self, user_id: int) -> str:
        """Return the authorization-refresh-data header value for `user_id`."""
        expires_at = int(self._clock.now() + self._ttl)
        known = self._refresh.get(user_id)
        if known is not None and known[0] == expires_at:
            return known[1]

        token = self._encode(user_id, expires_at)
        value = json.dumps(
            {"access_token": token, "expires_at": expires_at}, separators=(",", ":")
        )
        self._refresh[user_id] = (expires_at, value)
        return value

    def _encode(self, user_id: int, expires_at: int) -> str:
        claims = {"user_id": user_id, "expires_at": expires_at}
        return jwt.encode(claims, self._key, algorithm="HS256", headers={"typ": None})

    def _decode(self, token: str) -> tuple[int, float]:
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise TokenError("invalid access token") from exc

        user_id = claims.get("user_id")
        expires_at = claims.get("expires_at")
        if not isinstance(user_id, int) or not isinstance(expires_at, int | float):
            raise TokenError("invalid access token")
        if len(self._verified) >= _MAX_REMEMBERED:
            self._verified.clear()
        self._verified[token] = (user_id, expires_at)
        return user_id, expires_at

"""Presigned URLs for the emulator's S3-style endpoints: HMAC-SHA256, expiring."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from syncagent.emulator.clock import Clock

_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_MAX_EXPIRES = 7 * 24 * 3600


class UrlSigner:
    """Signs and checks URLs over the method, the path and the expiry."""

    def __init__(self, key: bytes, clock: Clock) -> None:
        self._key = key
        self._clock = clock

    def sign(self, base_url: str, method: str, path: str, ttl: float) -> str:
        """Return an absolute URL for `path` valid for `ttl` seconds from now."""
        signed_at = int(self._clock.now())
        date = time.strftime(_DATE_FORMAT, time.gmtime(signed_at))
        expires = max(1, min(int(ttl), _MAX_EXPIRES))
        query = {
            "X-Amz-Algorithm": "EMU-HMAC-SHA256",
            "X-Amz-Date": date,
            "X-Amz-Expires": str(expires),
            "X-Amz-Signature": self._signature(method, path, date, str(expires)),
        }
        return f"{base_url.rstrip('/')}{quote(path)}?{urlencode(query)}"

    def check(self, method: str, path: str, query: Mapping[str, str]) -> str | None:
        """Return None for a valid URL, else 'tampered' or 'expired'."""
        date = query.get("X-Amz-Date", "")
        expires = query.get("X-Amz-Expires", "")
        given = query.get("X-Amz-Signature", "")
        expected = self._signature(method, path, date, expires)
        if not hmac.compare_digest(given, expected):
            return "tampered"

        try:
            signed_at = _epoch_from_date(date)
            lifetime = int(expires)
        except ValueError:
            return "tampered"
        if signed_at + lifetime <= self._clock.now():
            return "expired"
        return None

    def _signature(self, method: str, path: str, date: str, expires: str) -> str:
        message = "\n".join((method.upper(), path, date, expires)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def _epoch_from_date(date: str) -> int:
    return calendar.timegm(time.strptime(date, _DATE_FORMAT))

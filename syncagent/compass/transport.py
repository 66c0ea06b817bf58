"""Authenticated, retrying HTTP access to Compass; the one place that sees httpx errors.

Every call goes through `Session.call` (JSON API) or `Session.with_retries` (presigned
URLs). They translate transport failures and status codes into the tree of
`syncagent.compass.errors` and retry what may pass, with backoff, within the bounds of a
`RetryPolicy`.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx

from syncagent.compass.errors import (
    AmbiguousResult,
    AuthenticationFailed,
    CompassError,
    CompassUnreachable,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RequestRejected,
    TransientError,
)
from syncagent.compass.models import Token
from syncagent.compass.retry import RetryPolicy, parse_retry_after
from syncagent.compass.sender import Sender

log = logging.getLogger(__name__)

AUTHENTICATE_PATH = "/api/v1/authenticate"
REFRESH_HEADER = "authorization-refresh-data"

# A token this close to its expiry (or a quarter of its lifetime, for short-lived
# tokens) is replaced before use rather than sent to fail.
TOKEN_MARGIN_SECONDS = 15.0

# After a server could not be reached at all, calls fail at once for this long.
UNREACHABLE_PAUSE = 15.0

# Tokens refused in a row, fresh ones included, before credentials count as refused.
FRESH_TOKEN_REFUSALS = 3


def make_token(access_token: str, expires_at: float) -> Token:
    """A token that is renewed a little before it expires."""
    lifetime = max(expires_at - time.time(), 0.0)
    margin = min(TOKEN_MARGIN_SECONDS, lifetime / 4)
    return Token(access_token, expires_at, expires_at - margin)


_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_SENT_INCOMPLETE = (httpx.WriteError, httpx.WriteTimeout)


class _Retry(Exception):
    """Internal: the attempt failed transiently; wait and go again."""

    def __init__(
        self,
        error: CompassError,
        retry_after: float | None = None,
        *,
        unreachable: bool = False,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        self.unreachable = unreachable


def redact_url(url: str) -> str:
    """Drop the query of a URL so signatures never reach a log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def error_messages(response: httpx.Response) -> str:
    """The reasons in a Compass `{"errors": [...]}` body, or a short excerpt."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(item) for item in body["errors"]) or response.reason_phrase
    return response.reason_phrase


def rejection_for(status: int, message: str) -> CompassError:
    """The error for a status code that retrying cannot fix."""
    if status in (400, 422):
        return InvalidRequest(message, status=status)
    if status == 403:
        return PermissionDenied(message, status=status)
    if status in (404, 410):
        return NotFound(message, status=status)
    return RequestRejected(message, status=status)


def is_transient_status(status: int) -> bool:
    """Whether a status code means the server may succeed later."""
    return status in (429, 500, 502, 503, 504)


class Session:
    """One Compass environment: base URL, credentials, the token and the retry loop."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        http: Sender,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.http = http
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._token: Token | None = None
        self._unreachable_until = 0.0
        self._token_lock = threading.Lock()
        self._absorbed = ""
        """The last refresh header read: Compass repeats one on every answer."""

    def __repr__(self) -> str:
        return f"Session({self.base_url!r}, user={self.username!r})"

    # -- tokens ---------------------------------------------------------------

    def token(self) -> Token:
        """A token valid for a while yet, logging in when there is none."""
        token = self._token
        if token is not None and time.time() < token.renew_at:
            return token  # the usual case: no lock for the calls in flight to share
        with self._token_lock:
            token = self._token
            if token is None or time.time() >= token.renew_at:
                token = self._login()
                self._token = token
            return token

    def _invalidate(self, failed: Token) -> None:
        with self._token_lock:
            if self._token is failed:
                self._token = None

    def _absorb_refresh(self, response: httpx.Response) -> None:
        raw = response.headers.get(REFRESH_HEADER)
        if not raw or raw == self._absorbed:
            # The same value comes back on every answer for a while (and with many
            # calls in flight): read it, and warn about it, once.
            return
        self._absorbed = raw
        try:
            data = json.loads(raw)
            fresh = make_token(str(data["access_token"]), float(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            log.warning(
                "Compass sent an unreadable %s header; ignoring it", REFRESH_HEADER
            )
            return
        with self._token_lock:
            if self._token is None or fresh.expires_at > self._token.expires_at:
                self._token = fresh

    def _login(self) -> Token:
        body = {"username": self.username, "password": self._password}
        response = self.with_retries(
            "POST",
            AUTHENTICATE_PATH,
            partial(self._send, "POST", AUTHENTICATE_PATH, body),
        )
        if response.status_code == 401:
            raise AuthenticationFailed(
                f"Compass at {self.base_url} refused the credentials of user "
                f"{self.username!r}: {error_messages(response)}",
                status=401,
            )
        if response.status_code in (404, 405):
            # No login there at all: the URL is wrong, which no retry will mend.
            raise AuthenticationFailed(
                f"{self.base_url} has no Compass login ({AUTHENTICATE_PATH} answered "
                f"{response.status_code}); is compass.url the base URL of Compass?",
                status=response.status_code,
            )
        self._raise_for_rejection(response)
        try:
            data = response.json()
            return make_token(str(data["access_token"]), float(data["expires_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError("Compass answered the login with no token") from exc

    # -- JSON API calls -------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Make one API call and return its decoded JSON body (None when empty).

        Retries transient failures. A non-idempotent call whose outcome is unknown
        raises AmbiguousResult instead of being repeated blindly.
        """
        for refusal in itertools.count(1):
            token = self.token()
            send = partial(self._send, method, path, body, params, token)
            response = self.with_retries(method, path, send, idempotent=idempotent)
            if response.status_code != 401:
                break
            if refusal > FRESH_TOKEN_REFUSALS:
                raise AuthenticationFailed(
                    f"{method} {path}: Compass refused {refusal} tokens in a row for "
                    f"user {self.username!r}, fresh ones included: "
                    f"{error_messages(response)}",
                    status=401,
                )
            # The first refusal is an expired token; a fresh one refused may be a
            # clock step or a hiccup of the server: wait a little before the next.
            log.info("%s %s: token refused, logging in again", method, path)
            self._invalidate(token)
            if refusal > 1:
                self._sleep(self.policy.delay(refusal - 1))
        self._absorb_refresh(response)
        self._raise_for_rejection(response, f"{method} {path}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(
                f"{method} {path}: Compass answered with a body that is not JSON"
            ) from exc

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | None = None,
        token: Token | None = None,
    ) -> httpx.Response:
        headers = {"accept": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token.access_token}"
        return self.http.send(
            method, self.base_url + path, json=body, params=params, headers=headers
        )

    def _raise_for_rejection(self, response: httpx.Response, what: str = "") -> None:
        if response.status_code < 400:
            return
        message = error_messages(response)
        raise rejection_for(
            response.status_code, f"{what}: {message}" if what else message
        )

    # -- the retry loop -------------------------------------------------------

    def with_retries(
        self,
        method: str,
        what: str,
        send: Callable[[], httpx.Response],
        *,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Run `send` until it answers with a status that retrying would not change.

        `what` names the call in messages; it must never hold a presigned query.
        """
        if time.monotonic() < self._unreachable_until:
            raise CompassUnreachable(
                f"{method} {what}: not tried: {self.base_url} could not be reached "
                "moments ago"
            )
        started = time.monotonic()
        unreachable = True
        for attempt in itertools.count(1):
            try:
                sent_at = time.monotonic()
                response = self._attempt(send, idempotent)
                log.debug(
                    "%s %s: %d in %.0f ms",
                    method,
                    what,
                    response.status_code,
                    (time.monotonic() - sent_at) * 1000,
                )
                return response
            except _Retry as retry:
                unreachable = unreachable and retry.unreachable
                elapsed = time.monotonic() - started
                delay = self.policy.delay(attempt, retry.retry_after)
                out_of_time = elapsed + delay > self.policy.deadline
                if (attempt >= self.policy.max_attempts or out_of_time) and unreachable:
                    # Calls made in the next moments fail at once instead of each
                    # waiting out its own retries against a server that is gone.
                    self._unreachable_until = time.monotonic() + UNREACHABLE_PAUSE
                    raise CompassUnreachable(
                        f"{method} {what}: {self.base_url} cannot be reached"
                        f"{self._route()} ({attempt} attempts in {elapsed:.0f} s): "
                        f"{retry.error.message}"
                    ) from retry.error
                if attempt >= self.policy.max_attempts or out_of_time:
                    raise TransientError(
                        f"{method} {what}: gave up after {attempt} attempts in "
                        f"{elapsed:.0f} s: {retry.error.message}",
                        status=retry.error.status,
                    ) from retry.error
                # A retry is no trouble yet (the call that finally fails says so, as
                # an error): the first is told, the rest only at -v.
                log.log(
                    logging.INFO if attempt == 1 else logging.DEBUG,
                    "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
                    method,
                    what,
                    retry.error.message,
                    delay,
                    attempt + 1,
                    self.policy.max_attempts,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _route(self) -> str:
        """How requests travel, when that may be why none arrive."""
        if self.http.proxied:
            return (
                " through the proxy the environment names (HTTP_PROXY, HTTPS_PROXY or "
                "ALL_PROXY)"
            )
        return ""

    @staticmethod
    def _attempt(
        send: Callable[[], httpx.Response], idempotent: bool
    ) -> httpx.Response:
        try:
            response = send()
        except _NEVER_SENT as exc:
            error = TransientError(f"network error: {exc!r}")
            raise _Retry(error, unreachable=True) from exc
        except _SENT_INCOMPLETE as exc:
            raise _Retry(TransientError(f"network error: {exc!r}")) from exc
        except httpx.TransportError as exc:
            if not idempotent:
                raise AmbiguousResult(
                    f"the connection failed after the request was sent: {exc!r}"
                ) from exc
            raise _Retry(TransientError(f"network error: {exc!r}")) from exc

        status = response.status_code
        if not is_transient_status(status):
            return response
        message = f"{status} {response.reason_phrase}: {error_messages(response)}"
        if status == 500 and not idempotent:
            raise AmbiguousResult(message, status=status)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise _Retry(TransientError(message, status=status), retry_after)

"""The client's retry loop, token handling and error translation, on a scripted server.

These are unit tests of the client's own logic; the end-to-end behaviour against a real
server is covered in tests/e2e.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from syncagent.compass import (
    AmbiguousResult,
    AuthenticationFailed,
    CompassUnreachable,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RetryPolicy,
    TransientError,
)
from syncagent.compass.sender import Sender
from syncagent.compass.transport import Session

Handler = Callable[[httpx.Request], httpx.Response]


def token_body(name: str, ttl: float = 3600) -> dict[str, object]:
    return {"access_token": f"tok-{name}", "expires_at": time.time() + ttl}


class Script:
    """A fake Compass: logs in, then answers API calls from a list of replies."""

    def __init__(
        self, replies: list[Callable[[httpx.Request], httpx.Response]]
    ) -> None:
        self.replies = replies
        self.logins = 0
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/authenticate":
            self.logins += 1
            return httpx.Response(201, json=token_body(f"login{self.logins}"))
        self.calls.append(request)
        return self.replies.pop(0)(request)


def reply(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return answer


def broken(error: type[httpx.TransportError]) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    return answer


def session_for(
    script: Script, sleeps: list[float] | None = None, attempts: int = 4
) -> Session:
    http = Sender(httpx.MockTransport(script))
    recorded = sleeps if sleeps is not None else []
    return Session(
        "https://compass.test",
        "demo",
        "pw-never-logged",
        http=http,
        policy=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.02),
        sleep=recorded.append,
    )


def test_transient_statuses_are_retried_with_retry_after_honoured() -> None:
    script = Script(
        [
            reply(503, {"errors": ["maintenance"]}, {"retry-after": "3"}),
            reply(429, {"errors": ["slow down"]}, {"retry-after": "2"}),
            reply(500, {"errors": ["oops"]}),
            reply(200, {"ok": True}),
        ]
    )
    sleeps: list[float] = []

    result = session_for(script, sleeps).call("GET", "/api/v1/vocabularies")

    assert result == {"ok": True}
    assert len(script.calls) == 4
    assert sleeps[:2] == [3.0, 2.0]
    assert 0 <= sleeps[2] <= 0.02


def test_retries_are_told_once_per_call_and_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy = [reply(503, {"errors": ["busy"]}) for _ in range(3)]
    script = Script([*busy, reply(200, {"ok": True})])
    caplog.set_level(logging.DEBUG, logger="syncagent.compass.transport")

    session_for(script).call("GET", "/api/v1/vocabularies")

    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO, logging.DEBUG, logging.DEBUG]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequest),
        (422, InvalidRequest),
        (403, PermissionDenied),
        (404, NotFound),
        (410, NotFound),
    ],
)
def test_rejections_are_not_retried_and_carry_the_server_message(
    status: int, error: type[Exception]
) -> None:
    script = Script([reply(status, {"errors": ["name already taken", "and more"]})])

    with pytest.raises(error) as caught:
        session_for(script).call("POST", "/api/v1/folders", body={"name": "x"})

    assert "name already taken; and more" in str(caught.value)
    assert len(script.calls) == 1


def test_gives_up_after_the_attempts_allowed() -> None:
    script = Script([reply(503, {"errors": ["down"]}) for _ in range(3)])

    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        session_for(script, attempts=3).call("GET", "/api/v1/vocabularies")


def test_connection_errors_are_retried_for_idempotent_calls() -> None:
    script = Script(
        [broken(httpx.ConnectError), broken(httpx.ReadError), reply(200, {"a": 1})]
    )

    assert session_for(script).call("GET", "/api/v1/asset_items/1") == {"a": 1}


def test_lost_answer_of_a_non_idempotent_call_is_ambiguous() -> None:
    for failure in (broken(httpx.ReadError), reply(500, {"errors": ["?"]})):
        script = Script([failure])

        with pytest.raises(AmbiguousResult):
            session_for(script).call(
                "POST", "/api/v2/uploads/http", body={}, idempotent=False
            )
        assert len(script.calls) == 1


def test_connect_error_on_a_non_idempotent_call_is_retried() -> None:
    script = Script([broken(httpx.ConnectError), reply(201, {"id": 5})])

    result = session_for(script).call(
        "POST", "/api/v1/folders", body={}, idempotent=False
    )

    assert result == {"id": 5}


def test_refused_token_leads_to_one_new_login() -> None:
    script = Script([reply(401, {"errors": ["expired"]}), reply(200, {"fine": True})])
    session = session_for(script)

    assert session.call("GET", "/api/v1/vocabularies") == {"fine": True}
    assert script.logins == 2
    assert script.calls[1].headers["authorization"] == "Bearer tok-login2"


def test_fresh_tokens_refused_a_few_times_are_retried() -> None:
    script = Script([reply(401, {"errors": ["expired"]}) for _ in range(3)])
    script.replies.append(reply(200, {"fine": True}))
    sleeps: list[float] = []

    assert session_for(script, sleeps).call("GET", "/api/v1/vocabularies") == {
        "fine": True
    }
    assert script.logins == 4
    assert len(sleeps) == 2  # no wait after the first refusal, a backoff after


def test_tokens_refused_over_and_over_are_fatal() -> None:
    script = Script([reply(401, {"errors": ["no"]}) for _ in range(4)])

    with pytest.raises(AuthenticationFailed, match="refused 4 tokens in a row"):
        session_for(script).call("GET", "/api/v1/vocabularies")


def test_bad_credentials_are_fatal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"errors": ["Invalid username or password"]})

    http = Sender(httpx.MockTransport(handler))
    session = Session("https://compass.test", "demo", "wrong", http=http)

    with pytest.raises(
        AuthenticationFailed, match="refused the credentials of user 'demo'"
    ):
        session.token()


def test_refreshed_token_from_the_header_is_used_next() -> None:
    fresh = json.dumps(token_body("refreshed", ttl=7200))
    script = Script(
        [
            reply(200, {}, {"authorization-refresh-data": fresh}),
            reply(200, {}),
        ]
    )
    session = session_for(script)

    session.call("GET", "/api/v1/vocabularies")
    session.call("GET", "/api/v1/vocabularies")

    assert script.calls[1].headers["authorization"] == "Bearer tok-refreshed"
    assert script.logins == 1


def test_expired_token_is_replaced_before_use() -> None:
    logins = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/authenticate":
            logins.append(1)
            return httpx.Response(201, json=token_body(str(len(logins)), ttl=-1))
        return httpx.Response(200, json={})

    http = Sender(httpx.MockTransport(handler))
    session = Session("https://compass.test", "demo", "pw", http=http)

    session.call("GET", "/api/v1/vocabularies")
    session.call("GET", "/api/v1/vocabularies")

    assert len(logins) == 2


def test_no_token_or_password_reaches_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script(
        [
            reply(503, {"errors": ["down"]}),
            reply(401, {"errors": ["expired"]}),
            reply(200, {}),
        ]
    )

    session_for(script).call("GET", "/api/v1/vocabularies")

    assert caplog.records, "the retry should have been logged"
    for record in caplog.records:
        text = record.getMessage()
        assert "tok-" not in text and "pw-never-logged" not in text
    assert "pw-never-logged" not in repr(session_for(script))


def test_a_server_that_cannot_be_reached_fails_fast_after_one_budget() -> None:
    script = Script([broken(httpx.ConnectError) for _ in range(4)])
    script.replies.append(reply(200, {"back": True}))
    sleeps: list[float] = []
    session = session_for(script, sleeps)

    with pytest.raises(CompassUnreachable, match="cannot be reached"):
        session.call("GET", "/api/v1/asset_items/1")
    with pytest.raises(CompassUnreachable, match="not tried"):
        session.call("GET", "/api/v1/asset_items/2")

    assert len(script.calls) == 4  # the second call sent nothing

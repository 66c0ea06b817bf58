"""The refresh header Compass repeats on every answer is read once per value."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from syncagent.compass.sender import Sender
from syncagent.compass.transport import Session


def session_answering(refresh: str) -> tuple[Session, list[str]]:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/authenticate":
            return httpx.Response(
                201, json={"access_token": "tok-login", "expires_at": time.time() + 60}
            )
        sent.append(request.headers["authorization"])
        return httpx.Response(
            200, json={}, headers={"authorization-refresh-data": refresh}
        )

    http = Sender(httpx.MockTransport(handler))
    return Session("https://compass.test", "demo", "pw", http=http), sent


def test_an_unreadable_refresh_header_is_reported_once_per_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, _sent = session_answering("not json")

    with caplog.at_level(logging.WARNING, logger="syncagent.compass.transport"):
        for _ in range(3):
            session.call("GET", "/api/v1/vocabularies")

    assert len([r for r in caplog.records if "unreadable" in r.message]) == 1


def test_a_repeated_refresh_header_still_gives_its_token() -> None:
    fresh = json.dumps({"access_token": "tok-new", "expires_at": time.time() + 7200})
    session, sent = session_answering(fresh)

    for _ in range(3):
        session.call("GET", "/api/v1/vocabularies")

    assert sent == ["Bearer tok-login", "Bearer tok-new", "Bearer tok-new"]

"""Authentication, tokens and the generic request rules of the API."""

from __future__ import annotations

import json
import logging
import socket
import time

import httpx
import pytest
from emu_helpers import Api, advance_clock

from syncagent.emulator.clock import Clock
from syncagent.emulator.server import EmulatorServer
from syncagent.emulator.tokens import TokenError, TokenIssuer


def test_wrong_password_is_401(emulator: EmulatorServer) -> None:
    response = httpx.post(
        f"{emulator.url}/api/v1/authenticate",
        json={"username": "demo", "password": "nope"},
    )

    assert response.status_code == 401
    assert response.json() == {"errors": ["invalid username or password"]}


def test_missing_token_is_401(emulator: EmulatorServer) -> None:
    response = httpx.get(f"{emulator.url}/api/v1/folders/1001/subfolders")

    assert response.status_code == 401
    assert response.json()["errors"]
    assert "authorization-refresh-data" not in response.headers


def test_tampered_token_is_401(api: Api) -> None:
    header, claims, signature = api.token.split(".")
    forged = f"{header}.{claims}.{signature[:-2]}xx"

    response = httpx.get(
        f"{api.base_url}/api/v1/folders/1001/subfolders",
        headers={"authorization": f"Bearer {forged}"},
    )

    assert response.status_code == 401


def test_expired_token_is_401_and_a_new_login_works(api: Api) -> None:
    advance_clock(api.base_url, 3601)

    expired = api.get("/api/v1/folders/1001/subfolders")
    fresh = Api(api.base_url)
    renewed = fresh.get("/api/v1/folders/1001/subfolders")
    fresh.close()

    assert expired.status_code == 401
    assert expired.json() == {"errors": ["access token has expired"]}
    assert renewed.status_code == 200


def test_refreshed_token_outlives_the_original(api: Api) -> None:
    advance_clock(api.base_url, 3000)
    refresh = json.loads(
        api.get("/api/v1/vocabularies").headers["authorization-refresh-data"]
    )
    advance_clock(api.base_url, 1000)

    old = api.get("/api/v1/vocabularies")
    new = httpx.get(
        f"{api.base_url}/api/v1/vocabularies",
        headers={"authorization": f"Bearer {refresh['access_token']}"},
    )

    assert old.status_code == 401
    assert new.status_code == 200


def test_error_responses_still_carry_refresh_data(api: Api) -> None:
    response = api.get("/api/v1/asset_items/424242")

    assert response.status_code == 404
    assert response.json() == {"errors": ["asset item 424242 not found"]}
    assert "access_token" in response.headers["authorization-refresh-data"]


def test_post_without_json_content_type_is_400(api: Api) -> None:
    response = api.http.post(
        "/api/v1/folders", content=b'{"name": "x", "parent_id": 1001}'
    )

    assert response.status_code == 400
    assert response.json() == {"errors": ["content-type must be application/json"]}


def test_malformed_json_is_400(api: Api) -> None:
    response = api.http.post(
        "/api/v1/folders",
        content=b'{"name": "x",',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"errors": ["request body is not valid JSON"]}


def test_unknown_api_route_is_json_404(api: Api) -> None:
    response = api.get("/api/v1/not_a_real_endpoint")

    assert response.status_code == 404
    assert response.json() == {"errors": ["not found"]}


class _FrozenClock(Clock):
    """Wall time stopped half way through a second; only advance() moves it."""

    def now(self) -> float:
        return 1_000_000.5 + self.advance(0)


def test_remembered_tokens_still_expire_and_refreshes_follow_the_clock() -> None:
    clock = _FrozenClock()
    issuer = TokenIssuer(b"k" * 32, clock, ttl=60)
    token, _expires = issuer.issue(7)
    first = issuer.refresh_data(7)

    assert issuer.verify(token) == 7
    assert issuer.refresh_data(7) == first
    clock.advance(1)
    assert issuer.refresh_data(7) != first
    clock.advance(60)
    with pytest.raises(TokenError, match="expired"):
        issuer.verify(token)
    forged, _expires = TokenIssuer(b"x" * 32, clock, ttl=60).issue(7)
    with pytest.raises(TokenError, match="invalid"):
        issuer.verify(forged)


def test_a_client_gone_before_its_body_arrived_is_no_server_error(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    caplog.set_level(logging.WARNING)

    # A client killed while it sends a JSON body: the headers promise 100 bytes.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/v1/authenticate HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"user'
        )
        time.sleep(0.2)
    time.sleep(0.3)
    answer = httpx.post(
        emulator.url + "/api/v1/authenticate",
        json={"username": "demo", "password": "demo"},
    )

    assert answer.status_code == 200
    assert [r.getMessage() for r in caplog.records] == []

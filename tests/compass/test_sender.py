"""The sender: requests straight to a transport, or through httpx.Client when the
environment names a proxy."""

from __future__ import annotations

import httpx
import pytest

from syncagent.compass.sender import (
    USER_AGENT,
    Sender,
    network_client,
    proxy_in_environment,
)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY")


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROXY_VARIABLES, "SOCKS_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def recording(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True}, headers={"set-cookie": "a=b"})

    return httpx.MockTransport(handler)


def test_a_request_goes_out_whole_and_its_answer_comes_back_read() -> None:
    seen: list[httpx.Request] = []
    sender = Sender(recording(seen), timeout=httpx.Timeout(7.0))

    answer = sender.send(
        "POST", "https://compass.test/api/x", json={"a": 1}, params={"q": "v w"}
    )

    assert answer.json() == {"ok": True}
    assert answer.request is seen[0]
    assert seen[0].url == "https://compass.test/api/x?q=v+w"
    assert seen[0].content == b'{"a":1}'
    assert seen[0].headers["user-agent"] == USER_AGENT
    assert seen[0].extensions["timeout"]["read"] == 7.0


def test_cookies_set_by_a_server_are_not_sent_back() -> None:
    seen: list[httpx.Request] = []
    sender = Sender(recording(seen))

    sender.send("GET", "https://compass.test/a")
    sender.send("GET", "https://compass.test/b")

    assert "cookie" not in seen[1].headers


@pytest.mark.parametrize(
    ("environment", "proxied"),
    [
        ({}, False),
        ({"https_proxy": "http://127.0.0.1:3128"}, True),
        ({"HTTP_PROXY": "127.0.0.1:3128"}, True),
        ({"ALL_PROXY": "socks5://127.0.0.1:1080"}, True),
        # Not httpx's: desktop settings export them beside http_proxy.
        ({"FTP_PROXY": "ftp://127.0.0.1:2121"}, False),
        ({"socks_proxy": "socks://127.0.0.1:1080"}, False),
        ({"NO_PROXY": "127.0.0.1"}, False),
    ],
)
def test_only_an_http_proxy_in_the_environment_counts(
    no_proxies: pytest.MonkeyPatch, environment: dict[str, str], proxied: bool
) -> None:
    for name, value in environment.items():
        no_proxies.setenv(name, value)

    assert proxy_in_environment() is proxied


def test_other_proxy_variables_do_not_stop_the_sender(
    no_proxies: pytest.MonkeyPatch,
) -> None:
    no_proxies.setenv("FTP_PROXY", "ftp://127.0.0.1:2121")
    no_proxies.setenv("socks_proxy", "socks://127.0.0.1:1080")

    limits, timeout = httpx.Limits(), httpx.Timeout(5)
    client = network_client(verify=True, limits=limits, timeout=timeout)

    sender = Sender.for_network(client, verify=True, limits=limits, timeout=timeout)

    assert not sender.proxied
    sender.close()
    client.close()

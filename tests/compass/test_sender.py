"""The sender: requests straight to a transport, the environment's proxies per URL."""

from __future__ import annotations

import httpx
import pytest

from syncagent.compass.sender import USER_AGENT, Sender


def recording(seen: list[httpx.Request], name: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        request.extensions["via"] = name
        seen.append(request)
        return httpx.Response(200, json={"ok": True}, headers={"set-cookie": "a=b"})

    return httpx.MockTransport(handler)


def test_a_request_goes_out_whole_and_its_answer_comes_back_read() -> None:
    seen: list[httpx.Request] = []
    sender = Sender(recording(seen, "direct"), timeout=httpx.Timeout(7.0))

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
    sender = Sender(recording(seen, "direct"))

    sender.send("GET", "https://compass.test/a")
    sender.send("GET", "https://compass.test/b")

    assert "cookie" not in seen[1].headers


@pytest.mark.parametrize(
    ("environment", "url", "expected"),
    [
        ({}, "https://compass.test/a", "direct"),
        ({"HTTPS_PROXY": "http://proxy.test:3128"}, "https://compass.test/a", "p1"),
        ({"HTTPS_PROXY": "http://proxy.test:3128"}, "http://compass.test/a", "direct"),
        ({"ALL_PROXY": "http://proxy.test:3128"}, "http://compass.test/a", "p1"),
        (
            {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "compass.test"},
            "https://compass.test/a",
            "direct",
        ),
        (
            {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "other.test"},
            "https://compass.test/a",
            "p1",
        ),
    ],
)
def test_the_environments_proxy_is_used_where_it_applies(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    url: str,
    expected: str,
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    seen: list[httpx.Request] = []
    proxied = {"http://proxy.test:3128": recording(seen, "p1")}
    sender = Sender(recording(seen, "direct"), proxied=proxied)

    sender.send("GET", url)

    assert seen[0].extensions["via"] == expected


def test_a_proxy_named_without_a_scheme_is_an_http_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.test:3128")

    sender = Sender.for_network(
        verify=True, limits=httpx.Limits(), timeout=httpx.Timeout(5.0)
    )

    try:
        assert list(sender._proxied) == ["http://proxy.test:3128"]
    finally:
        sender.close()

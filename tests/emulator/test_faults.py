"""Fault injection: the middleware around a tiny ASGI app, served by uvicorn."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncagent.emulator.faults import (
    ConnectionDropped,
    FaultInjector,
    FaultPlan,
    FaultRule,
)

CHUNK = 64 * 1024
DOWNLOAD_SIZE = 1 << 20


def payload(size: int) -> bytes:
    """The bytes the test app serves for a download of ``size`` bytes."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


@dataclass
class Seen:
    """One request as the wrapped app saw it."""

    method: str
    path: str
    size: int
    chunks: int
    md5: str


@dataclass
class TinyApp:
    """An ASGI app with an api, a part-upload and a download route; records requests."""

    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        digest, size, chunks = hashlib.md5(), 0, 0
        while True:
            message = await receive()
            body = message.get("body", b"")
            digest.update(body)
            size, chunks = size + len(body), chunks + bool(body)
            if not message.get("more_body", False):
                break
        path = scope["path"]
        self.seen.append(Seen(scope["method"], path, size, chunks, digest.hexdigest()))

        if path == "/s3/objects/missing":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send(
                {"type": "http.response.body", "body": b"<Error>NoSuchKey</Error>"}
            )
        elif path.startswith("/s3/objects/"):
            await self._download(send, int(path.rsplit("/", 1)[1]))
        elif path == "/api/v1/empty":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/api/v1/zero":
            zero = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 200, "headers": zero})
            await send({"type": "http.response.body", "body": b""})
        else:
            body = json.dumps({"path": path, "size": size}).encode()
            headers = [(b"content-type", b"application/json")]
            headers.append((b"etag", f'"{digest.hexdigest()}"'.encode()))
            await send(
                {"type": "http.response.start", "status": 200, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})

    async def _download(self, send: Any, size: int) -> None:
        data = payload(size)
        length = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", length)],
            }
        )
        for offset in range(0, size, CHUNK):
            last = offset + CHUNK >= size
            chunk = data[offset : offset + CHUNK]
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": not last}
            )


@dataclass
class Served:
    """The running server: its base URL, the middleware and the app behind it."""

    base_url: str
    injector: FaultInjector
    app: TinyApp

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def use(self, spec: str) -> None:
        self.injector.set_plan(FaultPlan.parse(spec))


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    app = TinyApp()
    injector = FaultInjector(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        injector,
        http="httptools",
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(
        target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", injector, app)
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def served(server: Served) -> Iterator[Served]:
    server.injector.set_plan(FaultPlan())
    server.app.seen.clear()
    yield server
    server.injector.set_plan(FaultPlan())


def request(client: httpx.Client, channel: str, body: bytes = b"x") -> httpx.Response:
    """One request on a channel, as the emulator's clients make them."""
    if channel == "api":
        return client.post("/api/v1/folders", content=body)
    if channel == "part":
        return client.put("/s3/parts/abc/1", content=body)
    return client.get(f"/s3/objects/{DOWNLOAD_SIZE}")


def s3_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The Code and Message of an S3 XML error body."""
    root = ET.fromstring(response.content)
    assert root.tag == "Error"
    return root.findtext("Code"), root.findtext("Message")


# Passing through


def test_empty_plan_passes_every_channel(served: Served) -> None:
    with served.client() as client:
        api = request(client, "api", b"hello")
        part = request(client, "part", b"part bytes")
        download = request(client, "download")

    assert api.status_code == 200 and api.json()["size"] == 5
    assert part.headers["etag"] == f'"{hashlib.md5(b"part bytes").hexdigest()}"'
    assert download.content == payload(DOWNLOAD_SIZE)
    assert [seen.method for seen in served.app.seen] == ["POST", "PUT", "GET"]


def test_large_part_upload_streams_through(served: Served) -> None:
    served.use("api:503@0.5,download:corrupt@#1+")
    block = bytes(range(256)) * 4096
    blocks = 64

    def body() -> Iterator[bytes]:
        for _ in range(blocks):
            yield block

    with served.client(timeout=60) as client:
        response = client.put("/s3/parts/big/1", content=body())

    expected = hashlib.md5(block * blocks).hexdigest()
    assert response.status_code == 200
    (seen,) = served.app.seen
    assert seen.size == 64 << 20
    assert seen.md5 == expected
    assert seen.chunks > 1


# Status faults


@pytest.mark.parametrize("channel", ["api", "part", "download"])
@pytest.mark.parametrize("kind", ["500", "503", "429"])
def test_status_fault_answers_instead_of_the_app(
    served: Served, channel: str, kind: str
) -> None:
    served.use(f"{channel}:{kind}@#1,retry_after=3")
    with served.client() as client:
        response = request(client, channel)

    assert response.status_code == int(kind)
    assert response.headers.get("retry-after") == (None if kind == "500" else "3")
    if channel == "api":
        errors = response.json()["errors"]
        assert len(errors) == 1 and isinstance(errors[0], str)
    else:
        assert response.headers["content-type"] == "application/xml"
        code, message = s3_error(response)
        assert code in {"InternalError", "SlowDown", "TooManyRequests"} and message
    assert served.app.seen == []


def test_token_expired_spares_authenticate(served: Served) -> None:
    served.use("api:token_expired@#1+")
    with served.client() as client:
        login = client.post("/api/v1/authenticate", content=b"{}")
        folders = client.get("/api/v1/folders/1001/subfolders")

    assert login.status_code == 200
    assert folders.status_code == 401
    assert folders.json() == {"errors": ["Token has expired"]}
    assert served.injector.status()["matched"] == {"api": {"token_expired": 1}}


@pytest.mark.parametrize("channel", ["part", "download"])
def test_url_expired_answers_s3_access_denied(served: Served, channel: str) -> None:
    served.use(f"{channel}:url_expired@#1")
    with served.client() as client:
        expired = request(client, channel)
        fresh = request(client, channel)

    assert expired.status_code == 403
    assert s3_error(expired) == ("AccessDenied", "Request has expired")
    assert fresh.status_code == 200
    assert len(served.app.seen) == 1


# Body faults


def test_corrupt_flips_bytes_but_keeps_length(served: Served) -> None:
    served.use("download:corrupt@#2")
    with served.client() as client:
        clean, corrupt, clean_again = (request(client, "download") for _ in range(3))

    good = payload(DOWNLOAD_SIZE)
    assert clean.content == good and clean_again.content == good
    assert len(corrupt.content) == DOWNLOAD_SIZE
    assert hashlib.md5(corrupt.content).digest() != hashlib.md5(good).digest()
    differing = sum(a != b for a, b in zip(corrupt.content, good, strict=True))
    assert differing == DOWNLOAD_SIZE // CHUNK


def test_corrupt_spares_error_responses(served: Served) -> None:
    served.use("download:corrupt@#1+")
    with served.client() as client:
        response = client.get("/s3/objects/missing")

    assert response.status_code == 404
    assert response.content == b"<Error>NoSuchKey</Error>"


def test_reset_part_drops_the_upload_unanswered(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.use("part:reset@#1,reset_after=1024")
    with served.client() as client:
        with pytest.raises(httpx.TransportError):
            request(client, "part", b"p" * (1 << 20))
        retried = request(client, "part", b"p" * (1 << 20))

    assert retried.status_code == 200
    assert [seen.size for seen in served.app.seen] == [1 << 20]
    assert not [r for r in caplog.records if r.name == "uvicorn.error"]


def test_reset_download_sends_part_of_the_body(served: Served) -> None:
    served.use("download:reset@#1")
    received = bytearray()
    url = f"/s3/objects/{DOWNLOAD_SIZE}"
    with (
        served.client() as client,
        pytest.raises(httpx.TransportError),
        client.stream("GET", url) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received += chunk

    assert len(received) == 65536
    assert bytes(received) == payload(DOWNLOAD_SIZE)[:65536]


@pytest.mark.parametrize("path", ["/api/v1/folders", "/api/v1/empty", "/api/v1/zero"])
def test_reset_api_response_is_a_transport_error(
    served: Served, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    served.use("api:reset@#1+")
    with served.client() as client, pytest.raises(httpx.TransportError):
        client.post(path, content=b"{}")

    assert [seen.path for seen in served.app.seen] == [path]
    assert not [r for r in caplog.records if r.name == "uvicorn.error"]


@pytest.mark.parametrize("channel", ["api", "part", "download"])
def test_slow_holds_the_response_past_a_client_timeout(
    served: Served, channel: str
) -> None:
    served.use(f"{channel}:slow@#1,slow=0.5")
    with served.client(timeout=0.1) as client, pytest.raises(httpx.ReadTimeout):
        request(client, channel)
    with served.client(timeout=10) as client:
        response = request(client, channel)

    assert response.status_code == 200
    assert len(served.app.seen) == 2


def test_slow_response_arrives_whole(served: Served) -> None:
    served.use("download:slow@#1,slow=0.2")
    with served.client() as client:
        response = request(client, "download")

    assert response.content == payload(DOWNLOAD_SIZE)


# Rates and schedules


def statuses(served: Served, count: int) -> list[int]:
    with served.client() as client:
        return [request(client, "api").status_code for _ in range(count)]


def test_rate_with_a_seed_repeats_exactly(served: Served) -> None:
    served.use("api:503@0.3,seed=7")
    first = statuses(served, 40)
    fired = served.injector.status()["fired"]["api"]["503"]
    served.use("api:503@0.3,seed=7")
    second = statuses(served, 40)
    served.use("api:503@0.3,seed=8")
    other_seed = statuses(served, 40)

    assert first == second
    assert set(first) == {200, 503}
    assert first.count(503) == fired
    assert other_seed != first


def test_rules_keep_their_own_sequences(served: Served) -> None:
    served.use("api:503@0.3,seed=7")
    alone = statuses(served, 30)
    served.use("api:503@0.3,api:429@0.3,seed=7")
    together = statuses(served, 30)

    assert [s == 503 for s in together] == [s == 503 for s in alone]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("#3,#7", [3, 7]),
        ("#4+", [4, 5, 6, 7, 8, 9]),
        ("%3", [3, 6, 9]),
        ("#1,%4", [1, 4, 8]),
    ],
)
def test_schedule_fires_on_exact_requests(
    served: Served, when: str, expected: list[int]
) -> None:
    served.use(f"api:500@{when}")
    result = statuses(served, 9)

    assert [n for n, status in enumerate(result, 1) if status == 500] == expected


def test_first_rule_in_the_plan_wins_a_tie(served: Served) -> None:
    served.use("api:500@#2,api:503@#2")
    result = statuses(served, 3)

    assert result == [200, 500, 200]
    status = served.injector.status()
    assert status["matched"] == {"api": {"500": 3, "503": 3}}
    assert status["fired"] == {"api": {"500": 1, "503": 0}}


# The control endpoint


def test_control_endpoint_replaces_reports_and_clears(served: Served) -> None:
    with served.client() as client:
        empty = client.get("/_emulator/faults").json()
        put = client.put("/_emulator/faults", json={"spec": "api:503@#2,retry_after=4"})
        codes = [request(client, "api").status_code for _ in range(3)]
        report = client.get("/_emulator/faults").json()
        cleared = client.delete("/_emulator/faults")
        after = client.get("/_emulator/faults").json()

    assert empty["plan"]["rules"] == [] and empty["spec"] == ""
    assert put.status_code == 200
    assert put.json()["spec"] == "api:503@#2,retry_after=4"
    assert codes == [200, 503, 200]
    assert report["matched"] == {"api": {"503": 3}}
    assert report["fired"] == {"api": {"503": 1}}
    assert report["plan"]["rules"] == [{"channel": "api", "kind": "503", "at": [2]}]
    assert cleared.status_code == 204
    assert after["plan"]["rules"] == [] and after["fired"] == {}


def test_control_endpoint_takes_the_json_shape(served: Served) -> None:
    plan = {
        "rules": [
            {"channel": "part", "kind": "url_expired", "at": [1]},
            {"channel": "download", "kind": "corrupt", "from": 2},
            {"channel": "api", "kind": 429, "every": 5},
            {"channel": "api", "kind": "503", "rate": 0.25},
        ],
        "seed": 3,
        "slow": 0.5,
    }
    with served.client() as client:
        response = client.put("/_emulator/faults", json=plan)
        part = request(client, "part")

    assert response.status_code == 200
    assert response.json()["spec"] == (
        "part:url_expired@#1,download:corrupt@#2+,api:429@%5,api:503@0.25,"
        "seed=3,slow=0.5"
    )
    assert part.status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"spec": "api:teapot@0.1"}, "unknown kind 'teapot'"),
        ({"rules": [{"channel": "api", "kind": "500"}]}, "rule 1"),
        ({"rules": "api:500@1"}, '"rules" is a list'),
        ({"colour": "red"}, "unknown plan keys: colour"),
        ([1, 2], "a fault plan is a JSON object"),
    ],
)
def test_control_endpoint_rejects_a_bad_plan(
    served: Served, body: Any, message: str
) -> None:
    served.use("api:500@#5")
    with served.client() as client:
        response = client.put("/_emulator/faults", json=body)
        not_json = client.put("/_emulator/faults", content=b"{nope")

    assert response.status_code == 422
    assert message in response.json()["errors"][0]
    assert not_json.status_code == 422
    assert served.injector.plan == FaultPlan.parse("api:500@#5")


def test_control_endpoint_allows_only_its_methods(served: Served) -> None:
    with served.client() as client:
        response = client.post("/_emulator/faults", json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT, DELETE"


def test_other_emulator_paths_reach_the_app_from_loopback(served: Served) -> None:
    with served.client() as client:
        response = client.get("/_emulator/state")

    assert response.status_code == 200
    assert [seen.path for seen in served.app.seen] == ["/_emulator/state"]


def call_directly(
    injector: FaultInjector, method: str, path: str, host: str
) -> list[dict[str, Any]]:
    """Drive the middleware with a synthetic ASGI scope, no socket involved."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [],
        "client": (host, 50000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(injector(scope, receive, send))
    return sent


@pytest.mark.parametrize("path", ["/_emulator/faults", "/_emulator/state"])
def test_emulator_paths_are_hidden_from_other_hosts(path: str) -> None:
    app = TinyApp()
    injector = FaultInjector(app)
    remote = call_directly(injector, "GET", path, "192.0.2.10")
    mapped = call_directly(injector, "GET", path, "::ffff:127.0.0.1")

    assert remote[0]["status"] == 404
    assert mapped[0]["status"] == 200
    served_by_app = path != "/_emulator/faults"
    assert [seen.path for seen in app.seen] == ([path] if served_by_app else [])


def test_body_faults_pass_chunk_by_chunk() -> None:
    app = TinyApp()
    injector = FaultInjector(app, FaultPlan.parse("download:corrupt@#1+"))
    sent = call_directly(injector, "GET", f"/s3/objects/{4 * CHUNK}", "127.0.0.1")

    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert [len(m["body"]) for m in bodies] == [CHUNK] * 4
    assert [m["more_body"] for m in bodies] == [True, True, True, False]


def test_reset_bypasses_the_apps_own_error_handlers() -> None:
    handled: list[BaseException] = []

    async def blob(request: Request) -> Response:
        return Response(payload(4 * CHUNK), media_type="application/octet-stream")

    async def on_error(request: Request, exc: Exception) -> Response:
        handled.append(exc)
        return Response("handled", status_code=500)

    app = Starlette(
        routes=[Route("/s3/objects/blob", blob)],
        exception_handlers={Exception: on_error},
    )
    injector = FaultInjector(app, FaultPlan.parse("download:reset@#1"))
    with pytest.raises(ConnectionDropped):
        call_directly(injector, "GET", "/s3/objects/blob", "127.0.0.1")

    assert handled == []


# SPEC strings


def test_spec_parses_the_documented_example() -> None:
    plan = FaultPlan.parse(
        "api:503@0.1,api:429@0.05,part:reset@0.1,part:url_expired@#3,#7,"
        "download:corrupt@#1+,api:500@%5,seed=7,retry_after=2,slow=3,reset_after=10"
    )

    assert plan.rules == (
        FaultRule("api", "503", rate=0.1),
        FaultRule("api", "429", rate=0.05),
        FaultRule("part", "reset", rate=0.1),
        FaultRule("part", "url_expired", at=(3, 7)),
        FaultRule("download", "corrupt", start=1),
        FaultRule("api", "500", every=5),
    )
    assert (plan.seed, plan.retry_after, plan.slow, plan.reset_after) == (7, 2, 3.0, 10)
    assert FaultPlan.parse(plan.spec()) == plan
    assert FaultPlan.from_json(plan.to_json()) == plan


def test_empty_spec_is_the_empty_plan() -> None:
    assert FaultPlan.parse("") == FaultPlan()
    assert FaultPlan.parse("  ").rules == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("api:503", "'api:503@': expected CHANNEL:KIND@WHEN"),
        ("api@0.1", "'api@0.1': expected CHANNEL:KIND@WHEN"),
        ("ftp:503@0.1", "'ftp:503@0.1': ftp:503: unknown channel 'ftp'"),
        ("api:teapot@0.1", "'api:teapot@0.1': api:teapot: unknown kind 'teapot'"),
        ("api:corrupt@#1", "'api:corrupt@#1': api:corrupt: corrupt applies only to"),
        ("part:token_expired@#1", "token_expired applies only to api"),
        ("download:500@1.5", "'download:500@1.5': download:500: rate 1.5 is not"),
        ("api:503@often", "'api:503@often': 'often' is neither a rate"),
        ("api:503@#0", "'api:503@#0': api:503: request numbers count from 1"),
        ("api:503@#x", "'api:503@#x': bad schedule term '#x'"),
        ("api:503@%2,%3", "'api:503@%2,%3': bad schedule term '%3'"),
        ("api:503@0.1,#3", "'api:503@0.1,#3': a rate does not mix"),
        ("#3,api:503@#1", "'#3': no rule before it"),
        ("api:503@0.1,,seed=1", "empty item between commas"),
        ("colour=red", "colour=red: unknown option 'colour'"),
        ("seed=abc", "seed=abc: expected an integer"),
        ("slow=soon", "slow=soon: expected a number of seconds"),
        ("api:503@#1,api:503@#2", "api:503 is given twice"),
        ("slow=-1", "slow=-1.0 cannot be negative"),
    ],
)
def test_bad_spec_names_the_bad_piece(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FaultPlan.parse(spec)


def test_fault_log_line_names_the_request(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.use("part:503@#1")
    faults_logger = "syncagent.emulator.faults"
    with caplog.at_level(logging.INFO, logger=faults_logger), served.client() as client:
        request(client, "part")

    messages = [r.getMessage() for r in caplog.records if r.name.endswith("faults")]
    assert messages == ["PUT /s3/parts/abc/1: injecting 503 fault (part)"]

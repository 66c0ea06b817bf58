"""Fault injection for the Compass emulator: an ASGI middleware driven by a fault plan.

Requests fall into three channels, told apart by method and path:

    api       any request to /api/...
    part      PUT /s3/parts/...      (one multipart part)
    download  GET /s3/objects/...    (a source, proxy or revision)

A plan is a list of rules, each naming a channel, a fault kind and when it fires, plus a
few options. As a SPEC string (the emulator's ``--faults``), items are separated by
commas; a rule is ``CHANNEL:KIND@WHEN`` and an option is ``NAME=VALUE``:

    api:503@0.1,api:429@%5,part:reset@0.1,part:url_expired@#3,#7,download:corrupt@#1+

WHEN counts the requests that rule matches, from 1:

    0.1   a rate: each matching request, with probability 0.1, from a seeded RNG
    #3    the 3rd matching request; a following bare item adds more (``#3,#7``)
    #3+   the 3rd matching request and every one after it
    %5    every 5th matching request (the 5th, 10th, ...)

Schedule terms mix (``#2,%10``); a rate does not mix with a schedule.

    kind            channels         effect
    500, 503, 429   all              that status instead of calling the app; 503 and 429
                                     carry Retry-After; JSON {"errors": [...]} on api,
                                     an S3 XML <Error> on part and download
    reset           all              the connection drops mid-body (below)
    slow            all              the response head is held back ``slow`` seconds
    token_expired   api              401 {"errors": ["Token has expired"]}; never on
                                     /api/v1/authenticate
    url_expired     part, download   403 S3 AccessDenied "Request has expired"
    corrupt         download         bytes of a 200/206 body flipped, length kept

Options: ``seed=INT`` (default 0), ``retry_after=SECONDS`` (1), ``slow=SECONDS`` (2),
``reset_after=BYTES`` (65536, how much of a body passes before a reset).

Each rule has its own request counter and its own RNG, so one rule never shifts
another's sequence and a run with the same plan repeats exactly. When several rules
fire on one request, the first in the plan applies. HEAD requests are never reset.

How a reset reaches the client: uvicorn closes the socket only when the app raises after
``http.response.start``; an app that raises before it gets a clean 500 reply written for
it, which a client would take as an ordinary server error. So a reset always sends a
response head whose body never arrives in full. A part upload is read for up to
``reset_after`` bytes, then answered with a head promising one byte, then dropped; an
api or download response passes its head and less than half its body (at most
``reset_after`` bytes), and a head that promises no body (204, 304, a zero length) is
changed to promise one byte. The client sees a transport error (with httpx,
RemoteProtocolError, ReadError or WriteError), never a complete reply.

The loopback-only ``/_emulator/faults`` endpoint: GET answers the plan and, per channel
and kind, how many requests each rule matched and how many faults it fired; PUT replaces
the plan and zeroes the counters; DELETE clears the plan. PUT takes either
``{"spec": "<SPEC string>"}`` or the plan as JSON:

    {"rules": [{"channel": "api", "kind": "503", "rate": 0.1},
               {"channel": "part", "kind": "url_expired", "at": [3, 7]},
               {"channel": "download", "kind": "corrupt", "from": 1},
               {"channel": "api", "kind": "429", "every": 5}],
     "seed": 7, "retry_after": 1, "slow": 2.0, "reset_after": 65536}
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

CONTROL_PATH = "/_emulator/faults"
CHANNELS = ("api", "part", "download")
KINDS = {
    "500": CHANNELS,
    "503": CHANNELS,
    "429": CHANNELS,
    "reset": CHANNELS,
    "slow": CHANNELS,
    "token_expired": ("api",),
    "url_expired": ("part", "download"),
    "corrupt": ("download",),
}
OPTIONS = ("seed", "retry_after", "slow", "reset_after")
AUTHENTICATE_PATH = "/api/v1/authenticate"

_MAX_CONTROL_BODY = 1 << 20
_STATUS_OF = {
    "500": 500,
    "503": 503,
    "429": 429,
    "token_expired": 401,
    "url_expired": 403,
}
_API_MESSAGES = {
    "500": "Internal Server Error -- We had a problem with our server. "
    "Try again later.",
    "503": "Service Unavailable -- We're temporarily offline for maintenance. "
    "Please try again later.",
    "429": "Too Many Requests -- Slow down and try again later.",
    "token_expired": "Token has expired",
}
_S3_ERRORS = {
    "500": ("InternalError", "The server failed to handle the request; try again."),
    "503": ("SlowDown", "The server is busy; slow down and try again."),
    "429": ("TooManyRequests", "Too many requests; slow down and try again."),
    "url_expired": ("AccessDenied", "Request has expired"),
}


class ConnectionDropped(BaseException):
    """Raised through uvicorn so that it closes the socket mid-response.

    A BaseException, like asyncio's CancelledError, so that the app's own handlers for
    Exception (Starlette's error middleware, a catch-all 500 handler) neither log it as
    a server error nor try to answer it: the connection is gone by design.
    """


@dataclass(frozen=True)
class FaultRule:
    """One fault kind on one channel, at a rate or on a schedule of request numbers."""

    channel: str
    kind: str
    rate: float | None = None
    at: tuple[int, ...] = ()
    start: int | None = None
    every: int | None = None

    def __post_init__(self) -> None:
        name = f"{self.channel}:{self.kind}"
        if self.channel not in CHANNELS:
            raise ValueError(
                f"{name}: unknown channel {self.channel!r}; expected one of "
                f"{', '.join(CHANNELS)}"
            )
        if self.kind not in KINDS:
            raise ValueError(
                f"{name}: unknown kind {self.kind!r}; expected one of "
                f"{', '.join(KINDS)}"
            )
        if self.channel not in KINDS[self.kind]:
            raise ValueError(
                f"{name}: {self.kind} applies only to {', '.join(KINDS[self.kind])}"
            )
        scheduled = bool(self.at) or self.start is not None or self.every is not None
        if (self.rate is None) == (not scheduled):
            raise ValueError(f"{name}: give either a rate or a schedule")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{name}: rate {self.rate} is not between 0 and 1")
        counts = [*self.at, self.start or 1, self.every or 1]
        if any(n < 1 for n in counts):
            raise ValueError(f"{name}: request numbers count from 1")

    def fires(self, n: int, rng: random.Random) -> bool:
        """Whether the rule fires on its n-th matching request (a rate draws once)."""
        if self.rate is not None:
            return rng.random() < self.rate
        if n in self.at or (self.start is not None and n >= self.start):
            return True
        return self.every is not None and n % self.every == 0

    def when(self) -> str:
        """The WHEN part of the rule in SPEC syntax."""
        if self.rate is not None:
            return repr(self.rate)
        terms = [f"#{n}" for n in self.at]
        terms += [f"#{self.start}+"] if self.start is not None else []
        terms += [f"%{self.every}"] if self.every is not None else []
        return ",".join(terms)

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON object (the shape PUT /_emulator/faults takes)."""
        out: dict[str, Any] = {"channel": self.channel, "kind": self.kind}
        if self.rate is not None:
            out["rate"] = self.rate
        if self.at:
            out["at"] = list(self.at)
        if self.start is not None:
            out["from"] = self.start
        if self.every is not None:
            out["every"] = self.every
        return out


@dataclass(frozen=True)
class FaultPlan:
    """Which faults fire where, and the options they share; empty means no faults."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0
    retry_after: int = 1
    slow: float = 2.0
    reset_after: int = 65536

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        for rule in self.rules:
            key = (rule.channel, rule.kind)
            if key in seen:
                raise ValueError(f"{rule.channel}:{rule.kind} is given twice")
            seen.add(key)
        for name in ("retry_after", "slow", "reset_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} cannot be negative")

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Parse a SPEC string (grammar in the module docstring).

        Items are ``CHANNEL:KIND@WHEN`` rules (WHEN is a rate such as ``0.1`` or
        schedule terms ``#N``, ``#N+``, ``%N``; a bare ``#N`` or ``%N`` item adds a term
        to the rule before it) and ``NAME=VALUE`` options (seed, retry_after, slow,
        reset_after). An empty string is the empty plan. Raises ValueError naming the
        item at fault.
        """
        drafts: list[tuple[str, list[str]]] = []
        options: dict[str, Any] = {}
        pieces = [piece.strip() for piece in spec.split(",")] if spec.strip() else []
        for piece in pieces:
            if not piece:
                raise ValueError(f"fault spec {spec!r}: empty item between commas")
            if piece[0] in "#%":
                if not drafts:
                    raise ValueError(f"fault spec item {piece!r}: no rule before it")
                drafts[-1][1].append(piece)
            elif "=" in piece:
                name, _, value = piece.partition("=")
                options[name.strip()] = _parse_option(name.strip(), value.strip())
            else:
                target, _, when = piece.partition("@")
                drafts.append((target, [when]))
        rules = tuple(_parse_rule(target, terms) for target, terms in drafts)
        return cls(rules=rules, **options)

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        """Build a plan from its JSON shape (module docstring); raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a fault plan is a JSON object")
        if "spec" in data:
            if set(data) != {"spec"} or not isinstance(data["spec"], str):
                raise ValueError('give "spec" as a string, alone')
            return cls.parse(data["spec"])
        unknown = set(data) - {"rules", *OPTIONS}
        if unknown:
            raise ValueError(f"unknown plan keys: {', '.join(sorted(unknown))}")
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ValueError('"rules" is a list of rule objects')
        rules = tuple(_rule_from_json(i, raw) for i, raw in enumerate(raw_rules, 1))
        options = {
            name: _json_option(name, data[name]) for name in OPTIONS if name in data
        }
        return cls(rules=rules, **options)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON, in the shape from_json takes."""
        options = {name: getattr(self, name) for name in OPTIONS}
        return {"rules": [rule.to_json() for rule in self.rules], **options}

    def spec(self) -> str:
        """The plan as a SPEC string; FaultPlan.parse(plan.spec()) == plan."""
        items = [f"{rule.channel}:{rule.kind}@{rule.when()}" for rule in self.rules]
        defaults = FaultPlan()
        for name in OPTIONS:
            if getattr(self, name) != getattr(defaults, name):
                items.append(f"{name}={getattr(self, name)}")
        return ",".join(items)


def _parse_rule(target: str, terms: list[str]) -> FaultRule:
    """Build a rule from ``CHANNEL:KIND`` and the WHEN terms that followed its ``@``."""
    item = f"{target}@{','.join(terms)}"
    try:
        channel, colon, kind = target.partition(":")
        if not colon or not terms[0]:
            raise ValueError("expected CHANNEL:KIND@WHEN")
        if terms[0][0] not in "#%":
            if len(terms) > 1:
                raise ValueError("a rate does not mix with schedule terms")
            return FaultRule(channel.strip(), kind.strip(), rate=_parse_rate(terms[0]))
        schedule = _parse_schedule(terms)
        return FaultRule(channel.strip(), kind.strip(), **schedule)
    except ValueError as exc:
        raise ValueError(f"fault spec item {item!r}: {exc}") from None


def _parse_rate(text: str) -> float:
    """Parse a rate such as ``0.1``."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a rate (0 to 1) nor a schedule (#N, #N+, %N)"
        ) from None


def _parse_schedule(terms: list[str]) -> dict[str, Any]:
    """Parse schedule terms into FaultRule's at, start and every fields."""
    at: list[int] = []
    start: int | None = None
    every: int | None = None
    for term in terms:
        try:
            number = int(term[1:].removesuffix("+"))
        except ValueError:
            raise ValueError(
                f"bad schedule term {term!r}; expected #N, #N+ or %N"
            ) from None
        if term[0] == "%" and (term.endswith("+") or every is not None):
            raise ValueError(f"bad schedule term {term!r}; one %N per rule, without +")
        if term[0] == "%":
            every = number
        elif term.endswith("+"):
            start = number if start is None else min(start, number)
        else:
            at.append(number)
    return {"at": tuple(at), "start": start, "every": every}


def _parse_option(name: str, value: str) -> Any:
    """Parse one ``NAME=VALUE`` option item."""
    if name not in OPTIONS:
        raise ValueError(
            f"fault spec item {name}={value}: unknown option {name!r}; "
            f"expected one of {', '.join(OPTIONS)}"
        )
    try:
        return float(value) if name == "slow" else int(value)
    except ValueError:
        kind = "a number of seconds" if name == "slow" else "an integer"
        raise ValueError(f"fault spec item {name}={value}: expected {kind}") from None


def _rule_from_json(index: int, raw: Any) -> FaultRule:
    """Build rule number ``index`` of a JSON plan."""
    try:
        if not isinstance(raw, dict):
            raise ValueError("a rule is a JSON object")
        unknown = set(raw) - {"channel", "kind", "rate", "at", "from", "every"}
        if unknown:
            raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
        at = raw.get("at", [])
        if not isinstance(at, list) or not all(_is_int(n) for n in at):
            raise ValueError('"at" is a list of request numbers')
        return FaultRule(
            channel=str(raw.get("channel")),
            kind=str(raw.get("kind")),
            rate=_optional_number(raw, "rate", float),
            at=tuple(at),
            start=_optional_number(raw, "from", int),
            every=_optional_number(raw, "every", int),
        )
    except ValueError as exc:
        raise ValueError(f"rule {index}: {exc}") from None


def _optional_number(raw: dict[str, Any], key: str, kind: type) -> Any:
    """A numeric field of a JSON rule, or None when absent."""
    value = raw.get(key)
    if value is None:
        return None
    valid = _is_int(value) or (kind is float and isinstance(value, float))
    if not valid:
        raise ValueError(
            f'"{key}" must be {"a number" if kind is float else "an integer"}'
        )
    return kind(value)


def _json_option(name: str, value: Any) -> Any:
    """A plan option from JSON, type-checked."""
    if _is_int(value) or (name == "slow" and isinstance(value, float)):
        return float(value) if name == "slow" else int(value)
    raise ValueError(f'"{name}" must be a number')


def _is_int(value: Any) -> bool:
    """True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


class _Tally:
    """A plan in force: its rules by channel, one RNG per rule, and the counters."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.rules: dict[str, list[tuple[FaultRule, random.Random]]] = {
            channel: [] for channel in CHANNELS
        }
        for rule in plan.rules:
            # A string seed hashes the same in every process, so runs repeat exactly.
            rng = random.Random(f"{plan.seed}:{rule.channel}:{rule.kind}")
            self.rules[rule.channel].append((rule, rng))
        self.matched: Counter[tuple[str, str]] = Counter()
        self.fired: Counter[tuple[str, str]] = Counter()

    def pick(self, channel: str, scope: Scope) -> FaultRule | None:
        """Count the request for every rule it matches; the first that fires applies."""
        chosen = None
        for rule, rng in self.rules[channel]:
            if not _applies(rule, scope):
                continue
            key = (rule.channel, rule.kind)
            self.matched[key] += 1
            if rule.fires(self.matched[key], rng) and chosen is None:
                chosen = rule
        if chosen is not None:
            self.fired[(chosen.channel, chosen.kind)] += 1
        return chosen

    def status(self) -> dict[str, Any]:
        """The plan and its counters, as GET /_emulator/faults answers them."""
        matched: dict[str, dict[str, int]] = {}
        fired: dict[str, dict[str, int]] = {}
        for rule in self.plan.rules:
            key = (rule.channel, rule.kind)
            matched.setdefault(rule.channel, {})[rule.kind] = self.matched[key]
            fired.setdefault(rule.channel, {})[rule.kind] = self.fired[key]
        plan = self.plan
        return {
            "plan": plan.to_json(),
            "spec": plan.spec(),
            "matched": matched,
            "fired": fired,
        }


class FaultInjector:
    """ASGI middleware injecting the faults of a plan; serves /_emulator/faults."""

    def __init__(self, app: ASGIApp, plan: FaultPlan | None = None) -> None:
        self.app = app
        self._tally = _Tally(plan or FaultPlan())
        _quiet_uvicorn_drops()

    @property
    def plan(self) -> FaultPlan:
        """The plan in force."""
        return self._tally.plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Put a plan in force, with fresh counters and RNGs; safe from any thread."""
        self._tally = _Tally(plan)

    def status(self) -> dict[str, Any]:
        """The plan and the counters of matched requests and fired faults."""
        return self._tally.status()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection: control endpoint, fault, or straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/_emulator/") or path == "/_emulator":
            await self._control(scope, receive, send)
            return
        tally = self._tally
        channel = _channel_of(scope) if tally.plan.rules else None
        rule = tally.pick(channel, scope) if channel else None
        if rule is None:
            await self.app(scope, receive, send)
            return

        logger.info(
            "%s %s: injecting %s fault (%s)", scope["method"], path, rule.kind, channel
        )
        await self._inject(rule, tally.plan, scope, receive, send)

    async def _inject(
        self,
        rule: FaultRule,
        plan: FaultPlan,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Apply one fired rule to one request."""
        if rule.kind in _STATUS_OF:
            await _send_error(send, rule, plan.retry_after)
        elif rule.kind == "reset" and rule.channel == "part":
            await _drop_upload(receive, send, plan.reset_after)
        elif rule.kind == "reset":
            await _drop_response(self.app, scope, receive, send, plan.reset_after)
        elif rule.kind == "slow":
            await self.app(scope, receive, _delayed(send, plan.slow))
        else:
            await self.app(scope, receive, _corrupting(send))

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve /_emulator/faults to loopback clients; hide /_emulator/ from others."""
        if not _is_loopback(scope):
            await _send_json(send, 404, {"errors": ["Not Found"]})
            return
        if scope["path"] != CONTROL_PATH:
            await self.app(scope, receive, send)
            return

        method = scope["method"]
        if method == "GET":
            await _send_json(send, 200, self.status())
        elif method == "PUT":
            await self._put_plan(receive, send)
        elif method == "DELETE":
            self.set_plan(FaultPlan())
            await _send_json(send, 204, None)
        else:
            allow = [(b"allow", b"GET, PUT, DELETE")]
            await _send_json(send, 405, {"errors": ["Method Not Allowed"]}, allow)

    async def _put_plan(self, receive: Receive, send: Send) -> None:
        """Replace the plan from a PUT body; 422 with the reason when it is invalid."""
        body = await _read_body(receive, _MAX_CONTROL_BODY)
        try:
            if body is None:
                raise ValueError(f"plan body is over {_MAX_CONTROL_BODY} bytes")
            plan = FaultPlan.from_json(json.loads(body))
        except ValueError as exc:
            await _send_json(send, 422, {"errors": [str(exc)]})
            return
        self.set_plan(plan)
        logger.info("fault plan replaced: %s", plan.spec() or "(empty)")
        await _send_json(send, 200, self.status())


def _channel_of(scope: Scope) -> str | None:
    """The channel a request belongs to, or None when no fault can apply to it."""
    path, method = scope["path"], scope["method"]
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/s3/parts/") and method == "PUT":
        return "part"
    if path.startswith("/s3/objects/") and method == "GET":
        return "download"
    return None


def _applies(rule: FaultRule, scope: Scope) -> bool:
    """Whether a rule counts this request at all."""
    if rule.kind == "token_expired":
        return scope["path"].rstrip("/") != AUTHENTICATE_PATH
    if rule.kind == "reset":
        return scope["method"] != "HEAD"
    return True


def _is_loopback(scope: Scope) -> bool:
    """True when the client connected from a loopback address."""
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


async def _send_error(send: Send, rule: FaultRule, retry_after: int) -> None:
    """Answer the status a status-like fault stands for, in its channel's dialect."""
    status = _STATUS_OF[rule.kind]
    headers = []
    if status in (429, 503):
        headers.append((b"retry-after", str(retry_after).encode()))
    if rule.channel == "api":
        await _send_json(send, status, {"errors": [_API_MESSAGES[rule.kind]]}, headers)
        return
    code, message = _S3_ERRORS[rule.kind]
    await _send_bytes(
        send, status, _s3_error_xml(code, message), b"application/xml", headers
    )


def _s3_error_xml(code: str, message: str) -> bytes:
    """An S3-style XML error document."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request_id = secrets.token_hex(8).upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><ServerTime>{now}</ServerTime></Error>"
    ).encode()


async def _send_json(
    send: Send,
    status: int,
    payload: Any,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete JSON response (no body for 204)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    await _send_bytes(send, status, body, b"application/json", headers or [])


async def _send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Send a complete response with a known body."""
    head = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 204:
        head = []
    await send(
        {"type": "http.response.start", "status": status, "headers": head + headers}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """Read a whole request body, or None once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _drop_upload(receive: Receive, send: Send, limit: int) -> None:
    """Read up to ``limit`` bytes of an upload, then drop the connection unanswered."""
    received = 0
    while received < limit:
        message = await receive()
        if message["type"] != "http.request":
            break
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break

    # uvicorn drops the socket only after a response head; this one promises a body
    # that never comes, so even a client that reads the head fails on the body.
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-length", b"1")],
        }
    )
    raise ConnectionDropped


async def _drop_response(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int
) -> None:
    """Run the app, pass its response head and part of its body, then drop."""
    truncated = _Truncated(send, limit)
    try:
        await app(scope, receive, truncated)
    except BaseException:
        if not truncated.dropped:
            raise
    # Whether the app returned, swallowed the drop or raised it wrapped in a task
    # group's exception group, uvicorn must see ConnectionDropped after the head.
    raise ConnectionDropped


class _Truncated:
    """A send that passes a response head and less than its whole body, then drops."""

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self._budget = limit
        self.dropped = False

    async def __call__(self, message: Message) -> None:
        """Forward, cut or refuse one ASGI message."""
        if self.dropped:
            raise ConnectionDropped
        if message["type"] == "http.response.start":
            message, length = _head_promising_body(message)
            if length is not None:
                self._budget = min(self._budget, length // 2)
            await self._send(message)
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return

        body = message.get("body", b"")
        more = message.get("more_body", False)
        if more and len(body) < self._budget:
            self._budget -= len(body)
            await self._send(message)
            return
        keep = self._budget if more else min(self._budget, len(body) // 2)
        if keep:
            await self._send(
                {"type": "http.response.body", "body": body[:keep], "more_body": True}
            )
        self.dropped = True
        raise ConnectionDropped


def _head_promising_body(message: Message) -> tuple[Message, int | None]:
    """A response head that promises at least one body byte, and its content length."""
    status = message["status"]
    headers = list(message.get("headers", []))
    lengths = [value for name, value in headers if name.lower() == b"content-length"]
    length = int(lengths[0]) if lengths else None
    if status in (204, 304) or length == 0:
        # A head that promises nothing would let the client finish cleanly.
        status = 200 if status in (204, 304) else status
        headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
        headers.append((b"content-length", b"1"))
        length = 1
    return {**message, "status": status, "headers": headers}, length


def _delayed(send: Send, seconds: float) -> Send:
    """A send that holds the response head back for ``seconds``."""

    async def delayed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return delayed_send


def _corrupting(send: Send) -> Send:
    """A send that flips the first byte of every body chunk of a 200 or 206 response."""
    status = 0

    async def corrupting_send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and status in (200, 206):
            body = message.get("body", b"")
            if body:
                message = {**message, "body": bytes([body[0] ^ 0xFF]) + body[1:]}
        await send(message)

    return corrupting_send


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for each connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for uvicorn's report of a ConnectionDropped."""
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ConnectionDropped)


def _quiet_uvicorn_drops() -> None:
    """Install _QuietDrops on uvicorn's error logger, once."""
    uvicorn_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in uvicorn_logger.filters):
        uvicorn_logger.addFilter(_QuietDrops())

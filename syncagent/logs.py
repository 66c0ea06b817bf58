"""Logging for the commands: plain lines or JSON lines on stderr, secrets scrubbed.

Levels: DEBUG each event and API call; INFO each transfer outcome and each pass;
WARNING degraded but syncing (retries, per-file failures); ERROR a mapping or the
agent stopped. httpx, httpcore and uvicorn loggers stay at WARNING: their lines would
carry presigned URLs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any, TextIO, TypeVar

_T = TypeVar("_T")

_SECRETS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[token]"),
    (
        re.compile(r"(?i)((?:x-amz-[a-z-]+|signature|sig|token|password)=)[^&\s\"']+"),
        r"\1[redacted]",
    ),
    (re.compile(r"(?i)(\"password\"\s*:\s*\")[^\"]*"), r"\1[redacted]"),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_QUIET = (
    "httpx",
    "httpcore",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "alembic",
    # The embedded emulator is a stand-in for Compass; its chatter is not the agent's.
    "syncagent.emulator",
    # watchdog logs every raw file event at DEBUG: with the log file inside a watched
    # folder, each line would be an event, logged as a line, and so on for ever.
    "watchdog",
)


_MAPPING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "syncagent_mapping", default=None
)
"""The mapping the work of this thread is for, when there are several."""


@contextmanager
def about_mapping(label: str | None) -> Iterator[None]:
    """Prefix the log lines of this block with `label` (None: no prefix), and those
    of the work it hands to other threads through in_context()."""
    token = _MAPPING.set(label)
    try:
        yield
    finally:
        _MAPPING.reset(token)


def in_context(function: Callable[..., _T]) -> Callable[..., _T]:
    """`function`, to run on another thread with this thread's log context."""
    run: Callable[..., Any] = contextvars.copy_context().run
    return partial(run, function)


def mapping_label() -> str | None:
    """The mapping the current work is for, if log lines should name it."""
    return _MAPPING.get()


def scrub(text: str) -> str:
    """Remove tokens, passwords and URL signatures from a log line, and escape the
    bytes of names that are not UTF-8 (they could not be written out)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(text: str) -> str:
    """Control characters escaped, so that a file name cannot forge a log line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


class ScrubbingFormatter(logging.Formatter):
    """Plain lines, secrets scrubbed, one record per line (a traceback aside)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        label = mapping_label()
        if label is not None:
            record.message = f"[{label}] {record.message}"
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (secrets scrubbed)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        label = mapping_label()
        if label is not None:
            data["mapping"] = label
        if record.exc_info:
            data["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


def setup_logging(
    verbosity: int = 0, fmt: str = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send logs to stderr at INFO (-v: DEBUG), as text or JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            ScrubbingFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler

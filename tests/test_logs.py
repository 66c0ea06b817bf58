"""Log lines: secrets scrubbed, one record per line whatever a file name holds."""

from __future__ import annotations

import io
import json
import logging

from syncagent.display import print_summary
from syncagent.engine.report import PassReport
from syncagent.logs import setup_logging

FORGED = "a.txt\n17:00:00 ERROR sync stopped: forged\tline"


def log_once(fmt: str, message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = setup_logging(fmt=fmt, stream=stream)
    try:
        logging.getLogger("syncagent.test").warning(message, *args)
    finally:
        logging.getLogger().removeHandler(handler)
    return stream.getvalue()


def test_a_file_name_cannot_forge_a_log_line() -> None:
    text = log_once("text", "%s: uploaded", FORGED)

    assert text.count("\n") == 1
    assert "a.txt\\n17:00:00 ERROR sync stopped: forged\\tline: uploaded" in text


def test_json_lines_stay_one_object_per_line() -> None:
    text = log_once("json", "%s: uploaded", FORGED)

    assert text.count("\n") == 1
    assert json.loads(text)["message"] == f"{FORGED}: uploaded"


def test_secrets_are_scrubbed_from_messages() -> None:
    text = log_once(
        "text",
        "PUT %s failed with Bearer %s",
        "http://h/s3/parts/k/1?X-Amz-Expires=900&X-Amz-Signature=abc123",
        "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.sig",
    )

    assert "abc123" not in text and "eyJ" not in text


def test_the_summary_escapes_names_too() -> None:
    report = PassReport("/media", 1001)
    report.fail(FORGED, "cannot read the file: Permission denied", permanent=True)
    out = io.StringIO()

    print_summary([report], out, dry_run=False)

    assert "\n17:00:00 ERROR" not in out.getvalue()
    assert "a.txt\\n17:00:00 ERROR" in out.getvalue()


def test_verbose_logs_leave_out_the_raw_file_events_of_watchdog() -> None:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = setup_logging(verbosity=1, stream=stream)
    try:
        logging.getLogger("watchdog.observers.inotify_buffer").debug("in-event %s", 1)
        logging.getLogger("syncagent.watch.settle").debug("a.txt: settled")
    finally:
        # Leave the process's logging as it was for the tests that follow.
        root.removeHandler(handler)
        root.setLevel(level)

    assert "in-event" not in stream.getvalue()
    assert "a.txt: settled" in stream.getvalue()


def test_a_name_that_is_not_utf8_is_escaped_not_a_logging_error() -> None:
    name = b"clip\xfe.mov".decode("utf-8", "surrogateescape")

    line = log_once("text", "%s: settled", name)

    assert "clip\\udcfe.mov: settled" in line


def test_work_handed_to_another_thread_names_the_same_mapping() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from syncagent.logs import about_mapping, in_context

    with about_mapping("clips"), ThreadPoolExecutor(1) as pool:
        here = log_once("text", "%s: uploaded", "c.mov")
        handed = pool.submit(in_context(log_once), "json", "%s: uploaded", "a.mov")
        bare = pool.submit(log_once, "text", "%s: uploaded", "b.mov")
        line = json.loads(handed.result())
        other = bare.result()

    assert "WARNING [clips] c.mov: uploaded" in here
    assert (line["mapping"], line["message"]) == ("clips", "a.mov: uploaded")
    assert "[clips]" not in other  # handed over without its context
    assert "[clips]" not in log_once("text", "%s: uploaded", "d.mov")

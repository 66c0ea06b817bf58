"""Which failures were reported already: warned about once per change of the file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from syncagent.engine.problems import reported_before
from syncagent.ledger import FailureRecord

RECORDED = datetime(2026, 12, 4, 20, 0, 0, tzinfo=UTC)
BEFORE_NS = int(RECORDED.timestamp() * 1e9) - 1_000_000
AFTER_NS = int(RECORDED.timestamp() * 1e9) + 1_000_000
REASON = "the name is not valid UTF-8, which Compass cannot store; rename it"
KNOWN = FailureRecord(
    rel_path="bad\\xffname.txt",
    operation="upload",
    reason=REASON,
    permanent=True,
    first_seen=RECORDED,
    last_seen=RECORDED,
    count=3,
)


def test_the_same_failure_on_an_unchanged_file_was_reported() -> None:
    assert reported_before(KNOWN, REASON, BEFORE_NS)


def test_a_change_of_the_file_since_the_record_is_worth_a_warning() -> None:
    assert not reported_before(KNOWN, REASON, AFTER_NS)
    assert not reported_before(KNOWN, REASON, None)


def test_a_new_or_other_failure_is_worth_a_warning() -> None:
    assert not reported_before(None, REASON, BEFORE_NS)
    assert not reported_before(KNOWN, "symbolic link to outside", BEFORE_NS)
    assert not reported_before(replace(KNOWN, operation="download"), REASON, BEFORE_NS)


def test_a_failure_that_may_pass_is_not_repeated_either() -> None:
    # A file a program keeps open for writing fails at every retry, unchanged.
    assert reported_before(replace(KNOWN, permanent=False), REASON, BEFORE_NS)

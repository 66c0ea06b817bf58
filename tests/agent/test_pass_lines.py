"""The line the agent logs after each pass counts all that the pass did."""

from __future__ import annotations

import logging

import pytest

from syncagent.agent.service import _log_report
from syncagent.engine.pull_report import PullReport
from syncagent.engine.report import PassReport


def test_a_pass_line_counts_what_the_summary_of_sync_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drop_box = PassReport("/inbox", 1002)
    drop_box.adopted, drop_box.moved_to_done, drop_box.folders_created = 2, 3, 1
    pull = PullReport("/mirror", 1001)
    pull.withheld, pull.folders_moved = 1, 2

    with caplog.at_level(logging.INFO, logger="syncagent.agent.service"):
        _log_report(drop_box)
        _log_report(pull)

    assert [r.getMessage().rsplit(" in ", 1)[0] for r in caplog.records] == [
        "/inbox: pass done: 2 adopted, 1 folder created, 3 moved to done",
        "/mirror: pass done: 1 withheld, 2 folders moved",
    ]

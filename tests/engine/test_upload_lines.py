"""How an upload's log line tells how its bytes went up."""

from __future__ import annotations

from syncagent.engine.upload import Transferred
from syncagent.engine.upload_files import _how_sent


def done(size: int, sent: int, seconds: float = 2.0) -> Transferred:
    return Transferred("a.mov", "new", 7, size, sent, seconds)


def test_a_whole_upload_gives_its_time_and_rate() -> None:
    assert _how_sent(done(4_000_000, 4_000_000)) == " in 2.00 s (2.0 MB/s)"


def test_a_resumed_upload_counts_only_what_it_sent() -> None:
    assert _how_sent(done(4_000_000, 1_000_000)) == (
        " (1000000 sent now, the rest before) in 2.00 s (0.5 MB/s)"
    )


def test_an_upload_sent_wholly_before_shows_no_rate_of_zero() -> None:
    assert _how_sent(done(4_000_000, 0)) == " (all sent before; verified now)"

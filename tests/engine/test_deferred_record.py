"""A verified upload is recorded in a batch after its worker moved on; losing that
record (a crash) costs a check with Compass on the next run, never a byte sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.engine.upload import Transferred
from syncagent.ledger import Ledger
from tests.engine.test_part_confirmations import (
    SlowConfirms,
    started_upload,
    uploader_for,
)


def test_the_record_follows_the_upload_and_then_reports_it(
    tmp_path: Path, ledger_url: str
) -> None:
    ledger = Ledger(ledger_url)
    upload = started_upload(tmp_path, ledger)
    client = SlowConfirms((tmp_path / "take.mov").read_bytes())
    uploader = uploader_for(client, ledger)
    followed: list[tuple[Transferred, BaseException | None]] = []
    try:
        done = uploader.carry(
            tmp_path, upload, recorded=lambda *outcome: followed.append(outcome)
        )
        ledger.flush_deferred()
    finally:
        uploader.close()

    assert followed == [(done, None)]
    entry = ledger.entry(upload.mapping_id, "take.mov")
    assert entry is not None
    assert (entry.asset_id, entry.size) == (7, upload.file_size)
    assert entry.checksum == client.get_asset(7).checksum
    assert ledger.upload(upload.upload_id) is None


def test_a_record_lost_in_a_crash_is_verified_again_without_sending(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(ledger_url)
    upload = started_upload(tmp_path, ledger)
    client = SlowConfirms((tmp_path / "take.mov").read_bytes())
    uploader = uploader_for(client, ledger)

    # The process dies after the upload was verified, before its record was
    # committed: the deferred write never happens.
    with monkeypatch.context() as patch:
        patch.setattr(ledger, "finish_upload_later", lambda *args: None)
        uploader.carry(tmp_path, upload, recorded=lambda *outcome: None)
    left = ledger.upload(upload.upload_id)
    assert left is not None and left.state == "completing"
    assert ledger.entry(upload.mapping_id, "take.mov") is None
    sent = list(client.put)

    # The next run carries the same upload: it asks Compass, sends nothing.
    done = uploader.carry(tmp_path, left)
    uploader.close()

    assert client.put == sent
    assert done.bytes_sent == 0
    entry = ledger.entry(upload.mapping_id, "take.mov")
    assert entry is not None and entry.asset_id == 7
    assert ledger.upload(upload.upload_id) is None

"""Sent parts are confirmed off the senders' thread, in batches, then checkpointed."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from syncagent.compass import AssetItem, InvalidRequest
from syncagent.engine.progress import NoProgress
from syncagent.engine.upload import Uploader
from syncagent.ledger import Ledger, UploadRecord, UploadStart

MIB = 1024 * 1024
PART = 5 * MIB
PARTS = 3


class SlowConfirms:
    """Just enough of a Compass client for one upload; the first complete_parts
    waits (a few seconds at most) until every part was PUT."""

    def __init__(self, data: bytes, *, refuse: bool = False) -> None:
        self.data = data
        self.refuse = refuse
        self.put: list[int] = []
        self.confirmed: list[list[int]] = []
        self.puts_before_first_confirm: int | None = None
        self.all_put = threading.Event()
        self.lock = threading.Lock()

    def initiate_upload(self, asset_id: int, part_size: int) -> int:
        return -(-len(self.data) // part_size)

    def retrieve_upload_urls(self, asset_id: int, numbers: list[int]) -> dict[int, str]:
        return {n: f"http://parts/{n}" for n in numbers}

    def upload_part(self, url: str, data: bytes, md5_hex: str) -> None:
        assert hashlib.md5(data).hexdigest() == md5_hex
        with self.lock:
            self.put.append(int(url.rsplit("/", 1)[1]))
            if len(self.put) == PARTS:
                self.all_put.set()

    def complete_parts(self, asset_id: int, parts: list[tuple[int, str]]) -> None:
        if self.puts_before_first_confirm is None:
            self.all_put.wait(timeout=5)
            self.puts_before_first_confirm = len(self.put)
        if self.refuse:
            raise InvalidRequest("part 1: checksum is not the MD5 of the part")
        self.confirmed.append([number for number, _md5 in parts])

    def complete_upload(self, asset_id: int) -> None:
        pass

    def get_asset(self, asset_id: int) -> AssetItem:
        return AssetItem(
            asset_id=asset_id,
            name="take.mov",
            status="complete",
            size=len(self.data),
            checksum=hashlib.md5(self.data).hexdigest(),
        )


def started_upload(tmp_path: Path, ledger: Ledger) -> UploadRecord:
    movie = tmp_path / "take.mov"
    movie.write_bytes(os.urandom(PARTS * PART))
    st = movie.stat()
    mapping_id = ledger.ensure_mapping(str(tmp_path), 1001)
    start = UploadStart(
        "take.mov", "new", 1001, "take.mov", None, st.st_size, st.st_mtime_ns, st.st_ino
    )
    [upload] = ledger.begin_uploads(mapping_id, [start], "me", timedelta(minutes=5))
    ledger.set_upload_assets({upload.upload_id: 7})
    fresh = ledger.upload(upload.upload_id)
    assert fresh is not None
    return fresh


def uploader_for(client: SlowConfirms, ledger: Ledger) -> Uploader:
    return Uploader(
        client,  # type: ignore[arg-type]
        ledger,
        owner="me",
        part_size=PART,
        concurrency=1,
        memory_limit=4 * PART,
        progress=NoProgress(),
    )


def test_a_sender_goes_on_while_its_parts_are_confirmed_in_batches(
    tmp_path: Path,
    ledger_url: str,
) -> None:
    ledger = Ledger(ledger_url)
    upload = started_upload(tmp_path, ledger)
    client = SlowConfirms((tmp_path / "take.mov").read_bytes())
    uploader = uploader_for(client, ledger)
    try:
        done = uploader.carry(tmp_path, upload)
    finally:
        uploader.close()

    # One sender: it PUT every part while the first confirmation was pending.
    assert client.puts_before_first_confirm == PARTS
    assert sorted(n for batch in client.confirmed for n in batch) == [1, 2, 3]
    assert len(client.confirmed) < PARTS
    assert done.asset_id == 7
    assert ledger.upload(upload.upload_id) is None  # finished and recorded


def test_a_refused_confirmation_fails_the_upload_before_it_completes(
    tmp_path: Path,
    ledger_url: str,
) -> None:
    ledger = Ledger(ledger_url)
    upload = started_upload(tmp_path, ledger)
    client = SlowConfirms((tmp_path / "take.mov").read_bytes(), refuse=True)
    uploader = uploader_for(client, ledger)
    try:
        with pytest.raises(InvalidRequest):
            uploader.carry(tmp_path, upload)
    finally:
        uploader.close()

    left = ledger.upload(upload.upload_id)
    assert left is not None and left.state == "initiated"
    assert left.confirmed_parts == {}  # nothing Compass did not confirm

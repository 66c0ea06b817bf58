"""Drop boxes end to end: names near the disk's limit, and sidecars that are not files.

`syncagent sync` against the emulator over real HTTP; what reached Compass is read
back with plain httpx calls.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.support import RemoteView, run_sync, write_config

pytestmark = pytest.mark.e2e

LONG_CJK = "映" * 83 + ".mov"  # 253 bytes: legal, but `<name>.json` cannot exist
# Files are synced moments after they are written here: no wait for them to settle.
NO_SETTLE = "[agent]\nsettle_seconds = 0\n"


def test_long_names_go_up_and_sidecars_that_are_no_files_fail_their_file(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / LONG_CJK).write_bytes(b"clip")
    (inbox / "a.mov").write_bytes(b"a")
    (inbox / "a.mov.json").write_text('{"titles": [{"gpms_id": 1}]}')
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-outside")
    (inbox / "b.mov").write_bytes(b"b")
    (inbox / "b.mov.json").symlink_to(secret)
    (inbox / "c.mov").write_bytes(b"c")
    os.mkfifo(inbox / "c.mov.json")
    mapping = {"local": "inbox", "folder_id": 1001, "mode": "dropbox"}
    config = write_config(
        tmp_path,
        emulator.url,
        [{**mapping, "after_ingest": "move"}],
        extra=NO_SETTLE,
    )

    first = run_sync(config)

    assert first.returncode == 1
    # (The scan also lists the link and the pipe themselves, this once.)
    assert {"b.mov", "c.mov"} <= set(first.failures())
    assert "symbolic link" in first.failures()["b.mov"]
    assert "not a regular file" in first.failures()["c.mov"]
    view = RemoteView(emulator.url)
    try:
        remote = {a["name"]: a for a in view.folder_assets(1001)}
    finally:
        view.close()
    assert sorted(remote) == sorted([LONG_CJK, "a.mov"])
    assert [t["gpms_id"] for t in remote["a.mov"]["titles"]] == [1]
    assert sorted(os.listdir(inbox / "done")) == sorted(
        [LONG_CJK, "a.mov", "a.mov.json"]
    )
    failed = sorted(os.listdir(inbox / "failed"))
    kept = [f"{n}{end}" for n in ("b.mov", "c.mov") for end in ("", ".json")]
    notes = ["b.mov.error.txt", "c.mov.error.txt"]
    assert failed == sorted(kept + notes)
    assert (inbox / "failed" / "b.mov.json").is_symlink()
    assert sorted(os.listdir(inbox)) == ["done", "failed"]

    again = run_sync(config)

    assert again.returncode == 0, again.failures()
    assert again.mapping["uploaded"] == 0


def test_a_file_dropped_again_is_a_new_asset_with_its_new_sidecar(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mapping = {"local": "inbox", "folder_id": 1001, "mode": "dropbox"}
    config = write_config(
        tmp_path,
        emulator.url,
        [{**mapping, "after_ingest": "delete"}],
        extra=NO_SETTLE,
    )
    for gpms_id in (1, 2):
        (inbox / "promo.mov").write_bytes(b"the same cut")
        (inbox / "promo.mov.json").write_text(
            f'{{"titles": [{{"gpms_id": {gpms_id}}}]}}'
        )

        result = run_sync(config)

        assert result.returncode == 0, result.failures()
        assert (result.mapping["uploaded"], result.mapping["adopted"]) == (1, 0)
    view = RemoteView(emulator.url)
    try:
        assets = view.folder_assets(1001)
    finally:
        view.close()
    assert sorted(t["gpms_id"] for a in assets for t in a["titles"]) == [1, 2]
    assert sorted(os.listdir(inbox)) == []


def test_sync_leaves_a_drop_that_may_still_be_arriving_for_the_next_run(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clip = inbox / "clip.mov"
    clip.write_bytes(b"first half, the copy stalls here")  # changed just now
    mapping = {"local": "inbox", "folder_id": 1001, "mode": "dropbox"}
    config = write_config(
        tmp_path, emulator.url, [{**mapping, "after_ingest": "delete"}]
    )

    early = run_sync(config)

    assert early.returncode == 1
    assert "may still be arriving" in early.failures()["clip.mov"]
    assert early.mapping["uploaded"] == 0
    assert clip.exists()

    clip.write_bytes(b"first half, the copy stalls here, and the second half")
    settled = time.time() - 10
    os.utime(clip, (settled, settled))
    later = run_sync(config)

    assert later.returncode == 0, later.failures()
    view = RemoteView(emulator.url)
    try:
        [asset] = view.folder_assets(1001)
    finally:
        view.close()
    assert asset["size"] == len(
        b"first half, the copy stalls here, and the second half"
    )
    assert not clip.exists()

"""End-to-end: files that vanish, grow or change while they are being synced.

The engine runs in the test process here (over real HTTP to the emulator) so the test
can act at the exact instant between two steps of an upload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncagent.config import load_config
from syncagent.emulator.server import EmulatorServer
from syncagent.engine.progress import NoProgress
from syncagent.engine.report import PassReport
from syncagent.engine.upload import Uploader
from syncagent.engine.upload_files import FileSteps
from syncagent.runtime import open_runtime, run_upload_pass, run_upload_passes
from tests.e2e.support import RemoteView, assert_mirrored, run_sync, write_config

MIB = 1024 * 1024


def sync_in_process(config: Path) -> PassReport:
    with open_runtime(load_config(config), "sync") as runtime:
        [report] = run_upload_passes(runtime, NoProgress())
    return report


def wrap(
    monkeypatch: pytest.MonkeyPatch, name: str, before: Callable[..., None]
) -> None:
    """Run `before(*args)` ahead of Uploader.<name>."""
    original = getattr(Uploader, name)

    def wrapped(self: Uploader, *args: Any, **kwargs: Any) -> Any:
        before(*args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Uploader, name, wrapped)


@pytest.fixture
def setup(tmp_path: Path, emulator: EmulatorServer) -> tuple[Path, Path, RemoteView]:
    root = tmp_path / "media"
    root.mkdir()
    (root / "steady.txt").write_text("steady")
    config = write_config(
        tmp_path, emulator.url, [{"local": "media", "folder_id": 1001}]
    )
    return root, config, RemoteView(emulator.url)


def test_file_deleted_after_its_asset_was_created_leaves_nothing_behind(
    setup: tuple[Path, Path, RemoteView], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, config, view = setup
    (root / "doomed.mov").write_bytes(b"x" * 1000)

    def delete_doomed(_root: Path, upload: Any, *_: Any) -> None:
        if upload.rel_path == "doomed.mov":
            (root / "doomed.mov").unlink()

    wrap(monkeypatch, "carry", delete_doomed)
    report = sync_in_process(config)

    assert {f.rel_path: f.reason for f in report.failures} == {
        "doomed.mov": "deleted or moved away before it was uploaded"
    }
    assert sorted(view.tree(1001)) == ["steady.txt"]
    monkeypatch.undo()
    assert sync_in_process(config).ok


def test_file_deleted_between_scan_and_upload_is_reported(
    setup: tuple[Path, Path, RemoteView], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, config, view = setup
    (root / "gone.jpg").write_bytes(b"y" * 10)

    def delete_gone(uploads: Any, *_: Any) -> None:
        if (root / "gone.jpg").exists():
            (root / "gone.jpg").unlink()

    wrap(monkeypatch, "create_assets", delete_gone)
    report = sync_in_process(config)

    assert [f.rel_path for f in report.failures] == ["gone.jpg"]
    assert "deleted" in report.failures[0].reason
    assert sorted(view.tree(1001)) == ["steady.txt"]


def test_file_changed_during_its_upload_is_not_recorded_then_uploaded_whole(
    setup: tuple[Path, Path, RemoteView], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, config, view = setup
    movie = root / "take.mov"
    movie.write_bytes(b"a" * (3 * 5 * MIB))
    appended = threading.Event()

    def grow_once(upload: Any, urls: Any, part: Any, *_: Any) -> None:
        if part.number == 2 and not appended.is_set():
            appended.set()
            with open(movie, "ab") as stream:
                stream.write(b"late bytes")

    wrap(monkeypatch, "_put", grow_once)
    report = sync_in_process(config)

    assert [f.rel_path for f in report.failures] == ["take.mov"]
    assert "changed while being uploaded" in report.failures[0].reason
    monkeypatch.undo()

    again = sync_in_process(config)

    assert again.ok, again.failures
    assert again.uploaded == 1
    assert_mirrored(root, view, 1001)


def test_file_still_being_written_is_deferred_then_synced(
    setup: tuple[Path, Path, RemoteView],
) -> None:
    root, config, view = setup
    growing = root / "recording.wav"
    stop = threading.Event()

    def keep_writing() -> None:
        with open(growing, "ab") as stream:
            while not stop.is_set():
                stream.write(b"\0" * 4096)
                stream.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        time.sleep(0.2)
        result = run_sync(config)
    finally:
        stop.set()
        writer.join()

    assert result.returncode == 1
    assert list(result.failures()) == ["recording.wav"]
    assert "still being written" in result.failures()["recording.wav"]
    assert "recording.wav" not in view.tree(1001)

    time.sleep(1.1)
    assert run_sync(config).returncode == 0
    assert_mirrored(root, view, 1001)


def test_a_server_gone_mid_sync_stops_the_pass_quickly_then_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmulatorServer(data_dir=tmp_path / "emulator")
    server.start()
    port = int(server.url.rsplit(":", 1)[1])
    root = tmp_path / "media"
    root.mkdir()
    for index in range(60):
        (root / f"still_{index:02d}.jpg").write_bytes(bytes([index]) * 2000)
    config = write_config(tmp_path, server.url, [{"local": "media", "folder_id": 1001}])
    started = threading.Event()

    def stop_server_on_the_fifth(_root: Path, upload: Any, *_: Any) -> None:
        if upload.rel_path == "still_05.jpg" and not started.is_set():
            started.set()
            server.stop()

    wrap(monkeypatch, "carry", stop_server_on_the_fifth)
    began = time.monotonic()
    report = sync_in_process(config)
    took = time.monotonic() - began

    assert report.fatal is not None and "cannot be reached" in report.fatal
    assert len(report.failures) <= 4  # the files in flight; the rest never started
    assert took < 90
    monkeypatch.undo()

    again = EmulatorServer(data_dir=tmp_path / "emulator", port=port)
    again.start()
    try:
        assert sync_in_process(config).ok
        assert_mirrored(root, RemoteView(again.url), 1001)
    finally:
        again.stop()


@pytest.mark.parametrize("step", ["settle", "carry"])
def test_under_the_agents_watch_a_file_gone_before_upload_is_no_failure(
    setup: tuple[Path, Path, RemoteView],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    step: str,
) -> None:
    # The agent's watch sees the delete or rename and passes again from there.
    root, config, view = setup
    (root / "gone.jpg").write_bytes(b"y" * 10)

    def rename_gone(*_: Any) -> None:
        (root / "gone.jpg").rename(root / "kept.jpg")

    def rename_as_it_opens(_root: Path, upload: Any, *_: Any) -> None:
        if upload.rel_path == "gone.jpg":
            rename_gone()

    if step == "settle":  # before its last look, when the upload begins
        monkeypatch.setattr(FileSteps, "_pause_for_recent", rename_gone)
    else:  # as the upload opens the file
        wrap(monkeypatch, step, rename_as_it_opens)
    caplog.set_level(logging.INFO, logger="syncagent")
    with open_runtime(load_config(config), "run") as runtime:
        [mapping] = runtime.config.mappings
        report = run_upload_pass(runtime, mapping, NoProgress(), watched=True)

    assert report.ok and report.failures == []
    assert "gone.jpg: deleted or moved away before it was uploaded" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert sorted(view.tree(1001)) == ["steady.txt"]

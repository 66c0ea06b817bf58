"""End-to-end: paths renamed or deleted at the instant the scan looks at them.

The engine runs in the test process (over real HTTP to the emulator) so the test can
rename a file between the listing of its folder and the scan's look at it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncagent.config import load_config
from syncagent.emulator.server import EmulatorServer
from syncagent.engine.progress import NoProgress
from syncagent.engine.report import PassReport
from syncagent.engine.upload_files import FileSteps
from syncagent.runtime import open_runtime, run_upload_passes
from tests.e2e.support import RemoteView, write_config

pytestmark = pytest.mark.e2e


def sync_in_process(config: Path) -> PassReport:
    with open_runtime(load_config(config), "sync") as runtime:
        [report] = run_upload_passes(runtime, NoProgress())
    return report


def race_the_listing(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    action: Callable[[], None],
    *,
    new_names_listed: bool,
) -> None:
    """Run `action` once, right after `folder` is listed and before the scan looks
    at its entries. With `new_names_listed`, names the action made are listed too,
    as when a rename lands on a name the listing had not reached yet."""
    real_scandir = os.scandir
    fired: list[bool] = []

    def racing_scandir(path: Any) -> Any:
        if fired or os.path.normpath(path) != os.path.normpath(folder):
            return real_scandir(path)
        fired.append(True)
        with real_scandir(path) as entries:
            listed = list(entries)
        action()
        if new_names_listed:
            names = {e.name for e in listed}
            with real_scandir(path) as entries:
                listed.extend(e for e in entries if e.name not in names)
        return contextlib.nullcontext(listed)

    monkeypatch.setattr(os, "scandir", racing_scandir)


@pytest.fixture
def synced(tmp_path: Path, emulator: EmulatorServer) -> tuple[Path, Path]:
    root = tmp_path / "media"
    (root / "day1").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a" * 100)
    (root / "day1" / "b.txt").write_bytes(b"b" * 100)
    mapping = {"local": "media", "folder_id": 1001, "on_local_delete": "remove"}
    config = write_config(tmp_path, emulator.url, [mapping])
    assert sync_in_process(config).uploaded == 2
    return root, config


@pytest.mark.parametrize("new_names_listed", [False, True])
def test_a_file_renamed_as_the_scan_looks_is_no_failure(
    synced: tuple[Path, Path],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    new_names_listed: bool,
) -> None:
    root, config = synced
    view = RemoteView(emulator.url)
    [asset_before] = view.tree(1001)["a.txt"]

    def rename() -> None:
        (root / "a.txt").rename(root / "c.txt")

    race_the_listing(monkeypatch, root, rename, new_names_listed=new_names_listed)
    report = sync_in_process(config)
    monkeypatch.undo()

    assert report.failures == [] and report.ok
    assert [
        r.message
        for r in caplog.records
        if r.name.startswith("syncagent.engine") and r.levelname == "WARNING"
    ] == []
    assert report.removed == 0 and report.uploaded == 0
    if not new_names_listed:
        # The rename's own event (here: the next sync) finds it.
        assert report.renamed == 0
        assert sync_in_process(config).renamed == 1
    else:
        assert report.renamed == 1
    [asset_after] = view.tree(1001)["c.txt"]
    assert asset_after["id"] == asset_before["id"]
    assert sorted(view.tree(1001)) == ["c.txt", "day1/b.txt"]
    view.close()


def test_a_folder_renamed_as_the_scan_looks_is_no_failure(
    synced: tuple[Path, Path],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, config = synced
    view = RemoteView(emulator.url)

    def rename() -> None:
        (root / "day1").rename(root / "day2")

    race_the_listing(monkeypatch, root, rename, new_names_listed=False)
    report = sync_in_process(config)
    monkeypatch.undo()

    assert report.failures == [] and report.ok
    assert report.removed == 0 and report.forgotten == 0
    assert sorted(view.tree(1001)) == ["a.txt", "day1/b.txt"]

    after = sync_in_process(config)
    assert after.ok and after.moved + after.removed == 1
    assert sorted(view.tree(1001)) == ["a.txt", "day2/b.txt"]
    view.close()


def test_a_file_the_listing_missed_under_both_names_is_not_taken_for_deleted(
    synced: tuple[Path, Path],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a.txt -> a.txt.x -> z.txt while the folder is read: neither name is listed.
    root, config = synced
    view = RemoteView(emulator.url)
    [asset_before] = view.tree(1001)["a.txt"]
    real_scandir = os.scandir
    fired: list[bool] = []

    def missing_scandir(path: Any) -> Any:
        if fired or os.path.normpath(path) != os.path.normpath(root):
            return real_scandir(path)
        fired.append(True)
        with real_scandir(path) as entries:
            listed = [e for e in entries if e.name != "a.txt"]
        (root / "a.txt").rename(root / "a.txt.x")
        (root / "a.txt.x").rename(root / "z.txt")
        return contextlib.nullcontext(listed)

    monkeypatch.setattr(os, "scandir", missing_scandir)
    report = sync_in_process(config)
    monkeypatch.undo()

    # Nothing removed; the one-shot sync says a run more is needed (exit 1).
    assert report.removed == 0 and report.uploaded == 0
    assert [(f.rel_path, f.permanent) for f in report.failures] == [("a.txt", False)]
    assert "left for the next pass" in report.failures[0].reason
    assert sorted(view.tree(1001)) == ["a.txt", "day1/b.txt"]  # left as it was

    after = sync_in_process(config)

    assert after.ok and after.renamed == 1 and after.uploaded == 0
    [asset_after] = view.tree(1001)["z.txt"]
    assert asset_after["id"] == asset_before["id"]  # the same asset, renamed
    assert sorted(view.tree(1001)) == ["day1/b.txt", "z.txt"]
    view.close()


def test_a_file_the_scan_saw_under_both_names_is_renamed_not_sent_again(
    synced: tuple[Path, Path],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The listing returns a.txt and its new name z.txt, both stat fine; a.txt is
    # gone by the time the upload of the "new" z.txt begins.
    root, config = synced
    view = RemoteView(emulator.url)
    [asset_before] = view.tree(1001)["a.txt"]

    def link() -> None:
        os.link(root / "a.txt", root / "z.txt")

    def unlink_old(*_: Any) -> None:
        (root / "a.txt").unlink()

    race_the_listing(monkeypatch, root, link, new_names_listed=True)
    monkeypatch.setattr(FileSteps, "_pause_for_recent", unlink_old)
    report = sync_in_process(config)
    monkeypatch.undo()

    assert report.uploaded == 0 and report.removed == 0
    [held] = report.failures
    assert held.rel_path == "z.txt" and not held.permanent
    assert sorted(view.tree(1001)) == ["a.txt", "day1/b.txt"]

    after = sync_in_process(config)

    assert after.ok and after.renamed == 1 and after.uploaded == 0
    [asset_after] = view.tree(1001)["z.txt"]
    assert asset_after["id"] == asset_before["id"]
    assert sorted(view.tree(1001)) == ["day1/b.txt", "z.txt"]
    view.close()

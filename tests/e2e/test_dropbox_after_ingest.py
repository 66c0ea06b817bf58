"""Drop boxes end to end after ingest: the log around sidecars, files that cannot be
deleted, and the subfolders ingest empties.

The agent (or `syncagent sync`) runs as a subprocess against the emulator over real
HTTP; `syncagent status --json` reads what an operator would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncagent.emulator.server import EmulatorServer
from tests.e2e.agent_support import Agent, agent_settings
from tests.e2e.support import RemoteView, run_sync, write_config

pytestmark = pytest.mark.e2e

NO_SETTLE = "[agent]\nsettle_seconds = 0\n"
INBOX = {
    "local": "inbox",
    "folder_id": 1001,
    "mode": "dropbox",
    "remove_emptied_folders": True,
}


def test_sidecars_are_no_drops_and_emptied_folders_go(
    tmp_path: Path, emulator: EmulatorServer, agents: list[Agent]
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "empty-before").mkdir(parents=True)
    (inbox / "hot").mkdir()
    (inbox / "hot/.keep").write_bytes(b"")  # hidden: excluded, so hot/ stays
    mapping = INBOX
    config = write_config(
        tmp_path,
        emulator.url,
        [{**mapping, "after_ingest": "move"}],
        extra=agent_settings(settle_seconds=1, rescan_interval=60),
    )
    agent = Agent(config).start()
    agents.append(agent)

    (inbox / "first.txt.json").write_text('{"titles": [{"gpms_id": 1}]}')
    time.sleep(0.1)
    (inbox / "first.txt").write_bytes(b"sidecar dropped first")
    (inbox / "after.txt").write_bytes(b"sidecar dropped after")
    (inbox / "after.txt.json").write_text('{"titles": [{"gpms_id": 2}]}')
    (inbox / "alone.json").write_text("{}")
    (inbox / "shoot/day1").mkdir(parents=True)
    (inbox / "shoot/day1/clip.txt").write_bytes(b"deep")
    (inbox / "shoot/day1/clip.txt.json").write_text("{}")
    (inbox / "hot/h.txt").write_bytes(b"hot")

    ingested = ["after.txt", "alone.json", "first.txt", "shoot/day1/clip.txt"]
    ingested.append("hot/h.txt")
    agent.wait_for(
        "every drop to reach done/",
        lambda: all((inbox / "done" / p).exists() for p in ingested),
    )
    agent.wait_for("the emptied folders to go", lambda: not (inbox / "shoot").exists())

    log = agent.log()
    for sidecar in ("first.txt.json", "after.txt.json", "shoot/day1/clip.txt.json"):
        assert f"{sidecar}: queued" not in log
    assert "first.txt: queued with its sidecar first.txt.json" in log
    assert "alone.json: queued as a file of its own" in log
    assert "after.txt: asset" in log
    assert "moved to done/after.txt, with its sidecar after.txt.json" in log
    assert "shoot/day1: folder left empty by the ingest; removed" in log
    assert "shoot: folder left empty by the ingest; removed" in log
    assert sorted(os.listdir(inbox)) == ["done", "empty-before", "hot"]
    assert os.listdir(inbox / "hot") == [".keep"]
    assert (inbox / "done/shoot/day1/clip.txt.json").exists()
    view = RemoteView(emulator.url)
    try:
        names = sorted(a["name"] for a in view.folder_assets(1001))
        folders = view.subfolders(1001)
    finally:
        view.close()
    assert names == ["after.txt", "alone.json", "first.txt"]
    assert {"hot", "shoot"} <= set(folders)  # Compass keeps its folders

    # A folder of a name ingest removed is found again in Compass, not made twice.
    (inbox / "shoot/day1").mkdir(parents=True)
    (inbox / "shoot/day1/again.txt").write_bytes(b"again")
    agent.wait_for(
        "the second drop into shoot/day1",
        (inbox / "done/shoot/day1/again.txt").exists,
    )
    view = RemoteView(emulator.url)
    try:
        listing = view.get("/api/v1/folders/1001/subfolders")["folders"]
        assert [f["name"] for f in listing].count("shoot") == 1
        assert sorted(view.tree(1001)) == [
            "after.txt",
            "alone.json",
            "first.txt",
            "hot/h.txt",
            "shoot/day1/again.txt",
            "shoot/day1/clip.txt",
        ]
    finally:
        view.close()
    status = agent.status()
    assert status["failed"] == 0, status
    assert agent.stop() == 0


def test_a_file_that_cannot_be_deleted_is_listed_failed_and_warned_about_once(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "locked").mkdir(parents=True)
    (inbox / "locked/stuck.txt").write_bytes(b"uploaded, never deleted")
    (inbox / "r1/r2").mkdir(parents=True)
    (inbox / "r1/r2/a.txt").write_bytes(b"a")
    (inbox / "r1/b.txt").write_bytes(b"b")
    os.chmod(inbox / "locked", 0o555)  # its files cannot be deleted
    mapping = INBOX
    config = write_config(
        tmp_path,
        emulator.url,
        [{**mapping, "after_ingest": "delete"}],
        extra=NO_SETTLE,
    )
    warning = "locked/stuck.txt: uploaded, but not deleted: Permission denied"
    try:
        first = run_sync(config, unprivileged=True)
        second = run_sync(config, unprivileged=True)
        status = Agent(config).status()
    finally:
        os.chmod(inbox / "locked", 0o755)

    assert first.mapping["uploaded"] == 3, first.stderr
    assert first.stderr.count(warning) == 1
    assert warning not in second.stderr
    assert second.mapping["uploaded"] == 0
    # Every run's summary says so too, and its exit status.
    stuck = [("locked/stuck.txt", "uploaded, but not deleted: Permission denied")]
    for run in (first, second):
        assert run.returncode == 1
        assert [(f["rel_path"], f["reason"]) for f in run.mapping["failures"]] == stuck
    [listed] = status["mappings"]
    assert [(f["rel_path"], f["reason"]) for f in listed["failures"]] == [
        ("locked/stuck.txt", "uploaded, but not deleted: Permission denied")
    ]
    assert status["failed"] == 1
    assert sorted(os.listdir(inbox)) == ["locked"]  # r1/ and r1/r2/ went

    third = run_sync(config)

    assert third.returncode == 0, third.stderr
    assert third.mapping["failures"] == []
    assert third.mapping["uploaded"] == 0  # deleted now, never uploaded again
    # The summaries count what left: the two that could go first, this one now.
    assert first.mapping["deleted_after_upload"] == 2
    assert third.mapping["deleted_after_upload"] == 1
    assert os.listdir(inbox) == []  # locked/ emptied by the ingest
    assert Agent(config).status()["failed"] == 0


class _Writer:
    """Another program writing a file: half now, the rest when told, then closed."""

    def __init__(self, path: Path, first: bytes) -> None:
        script = (
            "import sys\n"
            "with open(sys.argv[1], 'ab') as out:\n"
            "    out.write(sys.stdin.buffer.read(int(sys.argv[2])))\n"
            "    out.flush()\n"
            "    print('written', flush=True)\n"
            "    out.write(sys.stdin.buffer.read())\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, str(path), str(len(first))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(first)
        self.process.stdin.flush()
        assert self.process.stdout.readline() == b"written\n"

    def finish(self, rest: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(rest)
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


def test_a_drop_still_open_for_writing_waits_for_its_writer(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    view = RemoteView(emulator.url)
    first, rest = b"first half of the render " * 4000, b"and the rest " * 8000
    root = tmp_path / "inbox"
    root.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {
                "local": "inbox",
                "folder_id": 1001,
                "mode": "dropbox",
                "after_ingest": "delete",
            }
        ],
    )
    render = root / "render.mov"
    writer = _Writer(render, first)
    try:
        # It paused long past any settle time, yet it has not closed the file.
        paused = time.time() - 60
        os.utime(render, (paused, paused))

        waiting = run_sync(config)

        assert waiting.returncode == 1
        assert waiting.failures() == {
            "render.mov": "still open for writing by another program; retried later"
        }
        assert view.tree(1001) == {}
        assert render.read_bytes() == first  # neither sent torn nor deleted
    finally:
        writer.finish(rest)
    os.utime(render, (paused, paused))  # closed, and still since

    done = run_sync(config)

    assert done.returncode == 0, done.failures()
    [asset] = view.tree(1001)["render.mov"]
    assert asset["size"] == len(first + rest)
    assert not render.exists()


def test_part_urls_refused_again_and_again_leave_a_drop_for_the_next_pass(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    view = RemoteView(emulator.url)
    root = tmp_path / "inbox"
    root.mkdir()
    (root / "clip.mov").write_bytes(b"frames " * 1000)
    paused = time.time() - 60
    os.utime(root / "clip.mov", (paused, paused))
    mapping = {"local": "inbox", "folder_id": 1001, "mode": "dropbox"}
    config = write_config(tmp_path, emulator.url, [{**mapping, "after_ingest": "move"}])
    view.set_faults("part:url_expired@1.0")  # a clock or storage trouble there
    try:
        refused = run_sync(config)
    finally:
        view.clear_faults()

    assert refused.returncode == 1
    [reason] = refused.failures().values()
    assert "fresh part URLs in a row); the upload resumes at the next pass" in reason
    assert (root / "clip.mov").exists()  # not moved to failed/: nothing to fix
    assert not (root / "failed").exists()

    again = run_sync(config)

    assert again.returncode == 0, again.failures()
    assert (root / "done" / "clip.mov").exists()
    assert sorted(view.tree(1001)) == ["clip.mov"]

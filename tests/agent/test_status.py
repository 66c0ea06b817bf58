"""`syncagent status` from the ledger and the disk: counts, failures, passes, agents."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from syncagent.agent.status import collect_status
from syncagent.commands.status import print_status
from syncagent.config import load_config
from syncagent.ledger import EntryRecord, Ledger

TOML = """
[compass]
url = "embedded"
username = "demo"
password = "demo"
[ledger]
url = "sqlite:///ledger.db"
[[mapping]]
local = "plain"
folder_id = 1001
[[mapping]]
local = "box"
folder_id = 1002
mode = "dropbox"
after_ingest = "move"
"""


def synced(ledger: Ledger, mapping_id: int, root: Path, rel_path: str) -> None:
    st = (root / rel_path).stat()
    entry = EntryRecord(
        rel_path, "file", 1001, 1, rel_path, st.st_size, st.st_mtime_ns, st.st_ino, "0"
    )
    ledger.put_entry(mapping_id, entry)


def test_counts_failures_uploads_and_passes(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(TOML)
    config = load_config(tmp_path / "agent.toml")
    plain, box = tmp_path / "plain", tmp_path / "box"
    plain.mkdir()
    box.mkdir()
    for name in ("a.txt", "b.txt", "new.txt", "flying.mov", "bad.txt"):
        (plain / name).write_text(name)
    (plain / ".hidden").write_text("never synced")
    (box / "drop.mov").write_text("d")
    (box / "drop.mov.json").write_text("{}")
    (box / "failed").mkdir()
    (box / "failed/old.mov").write_text("o")
    (box / "failed/old.mov.error.txt").write_text("old.mov: Compass refused it\n")

    ledger = Ledger(config.ledger_url)
    plain_id = ledger.ensure_mapping(str(plain), 1001)
    synced(ledger, plain_id, plain, "a.txt")
    synced(ledger, plain_id, plain, "b.txt")
    ledger.begin_upload(
        plain_id,
        rel_path="flying.mov",
        kind="new",
        folder_id=1001,
        remote_name="flying.mov",
        asset_id=None,
        file_size=10,
        mtime_ns=1,
        inode=1,
        owner="elsewhere:1:x",
        lease=timedelta(minutes=10),
    )
    ledger.record_failure(plain_id, "bad.txt", "upload", "unreadable", permanent=True)
    pass_id = ledger.start_pass(plain_id, "upload", "me", lambda owner: False)
    ledger.finish_pass(pass_id, "failures", {"uploaded": 2, "folder_id": 1001})
    ledger.register_agent("me", "run", socket.gethostname(), os.getpid())

    status = collect_status(config, ledger)
    ledger.close()

    assert status.agent_running
    first, second = status.mappings
    assert (first.synced, first.pending, first.in_flight, first.failed) == (2, 1, 1, 1)
    assert [(f.rel_path, f.reason) for f in first.failures] == [
        ("bad.txt", "unreadable")
    ]
    assert first.uploads[0].rel_path == "flying.mov"
    assert first.uploads[0].state == "creating"
    assert first.last_passes["upload"]["outcome"] == "failures"
    assert first.last_passes["upload"]["counts"] == {"uploaded": 2}
    # The drop box: one file waits (its sidecar does not count), one failed earlier.
    assert (second.synced, second.pending, second.failed) == (0, 1, 1)
    assert second.failures[0].rel_path == "failed/old.mov"
    assert second.failures[0].reason == "old.mov: Compass refused it"

    data = json.loads(json.dumps(status.to_dict()))
    assert data["agent_running"] is True
    assert data["failed"] == 2
    assert data["mappings"][0]["pending"] == 1

    class Out:
        text = ""

        def write(self, chunk: str) -> None:
            Out.text += chunk

    print_status(status, Out())  # type: ignore[arg-type]
    assert "agent: running (pid" in Out.text
    assert "synced 2, pending 1, in flight 1, failed 1" in Out.text
    assert "failed: failed/old.mov: old.mov: Compass refused it" in Out.text


def test_a_mapping_never_synced_and_no_agent(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(TOML)
    config = load_config(tmp_path / "agent.toml")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain/x.txt").write_text("x")
    ledger = Ledger(config.ledger_url)
    ledger.register_agent("gone", "run", socket.gethostname(), 2**22 + 12345)

    status = collect_status(config, ledger)
    ledger.close()

    assert not status.agent_running
    assert "is gone" in status.processes[0].reason
    first, second = status.mappings
    assert (first.synced, first.pending, first.in_flight, first.failed) == (0, 1, 0, 0)
    assert first.last_passes == {}
    assert second.problem == "the local folder does not exist"
    assert second.pending is None


def test_a_pass_left_open_by_a_dead_agent_reads_as_interrupted(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(TOML)
    config = load_config(tmp_path / "agent.toml")
    (tmp_path / "plain").mkdir()
    ledger = Ledger(config.ledger_url)
    plain_id = ledger.ensure_mapping(str(tmp_path / "plain"), 1001)
    ledger.start_pass(plain_id, "upload", "vm:1:x", lambda owner: False)

    status = collect_status(config, ledger)
    ledger.register_agent("me", "run", socket.gethostname(), os.getpid())
    live = collect_status(config, ledger)
    ledger.close()

    assert status.mappings[0].last_passes["upload"]["outcome"] == "interrupted"
    assert live.mappings[0].last_passes["upload"]["outcome"] == "running"


def test_the_arrow_shows_which_way_a_mapping_syncs(tmp_path: Path) -> None:
    text = TOML.replace(
        'mode = "dropbox"\nafter_ingest = "move"\n', 'direction = "download"\n'
    )
    text += '[[mapping]]\nlocal = "both"\nfolder_id = 1003\ndirection = "both"\n'
    (tmp_path / "agent.toml").write_text(text)
    config = load_config(tmp_path / "agent.toml")
    ledger = Ledger(config.ledger_url)
    status = collect_status(config, ledger)
    ledger.close()
    out = io.StringIO()

    print_status(status, out)

    heads = [line for line in out.getvalue().splitlines() if "Compass folder" in line]
    assert [line.split(" Compass folder ")[0].split()[-1] for line in heads] == [
        "->",
        "<-",
        "<->",
    ]


def test_a_pass_that_stopped_short_says_why(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(TOML)
    config = load_config(tmp_path / "agent.toml")
    (tmp_path / "plain").mkdir()
    ledger = Ledger(config.ledger_url)
    plain_id = ledger.ensure_mapping(str(tmp_path / "plain"), 1001)
    pass_id = ledger.start_pass(plain_id, "upload", "me", lambda owner: False)
    why = "Compass cannot be reached; the pass stopped: 8 attempts in 13 s"
    ledger.finish_pass(pass_id, "error", {"fatal": why, "folder_id": 1001})
    status = collect_status(config, ledger)
    ledger.close()
    out = io.StringIO()

    print_status(status, out)

    [line] = [x for x in out.getvalue().splitlines() if "last upload pass" in x]
    assert line.startswith("  last upload pass: error at ")
    assert line.endswith(f": {why}")
    # A mapping not syncing is trouble for a monitor, with no file failed.
    [plain] = [m for m in status.mappings if m.local_root.endswith("plain")]
    assert (plain.failed, plain.stopped) == (0, f"upload: {why}")
    assert status.troubled


def test_counts_add_up_when_a_record_lands_between_the_reads(tmp_path: Path) -> None:
    # A pass commits a verified upload (entry in, upload row out) after status has
    # counted the synced entries but before it lists the uploads in flight.
    (tmp_path / "agent.toml").write_text(TOML)
    config = load_config(tmp_path / "agent.toml")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("a")
    (plain / "clip.mov").write_text("clip")
    ledger = Ledger(config.ledger_url)
    plain_id = ledger.ensure_mapping(str(plain), 1001)
    synced(ledger, plain_id, plain, "a.txt")
    st = (plain / "clip.mov").stat()
    upload = ledger.begin_upload(
        plain_id,
        rel_path="clip.mov",
        kind="new",
        folder_id=1001,
        remote_name="clip.mov",
        asset_id=None,
        file_size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        inode=st.st_ino,
        owner="elsewhere:1:x",
        lease=timedelta(minutes=10),
    )
    entry = EntryRecord(
        "clip.mov", "file", 1001, 2, "clip.mov", 4, st.st_mtime_ns, st.st_ino, "0"
    )
    listing = ledger.uploads

    def uploads_after_a_record(mapping_id: int) -> list[Any]:
        writer = threading.Thread(target=ledger.finish_upload, args=(upload, entry))
        writer.start()
        writer.join()
        return listing(mapping_id)

    ledger.uploads = uploads_after_a_record  # type: ignore[method-assign]

    first = collect_status(config, ledger).mappings[0]

    assert ledger.count_entries(plain_id) == 2  # the record did land
    assert (first.synced, first.in_flight, first.pending) == (1, 1, 0)

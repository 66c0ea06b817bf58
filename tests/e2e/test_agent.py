"""End-to-end: `syncagent run` as a real subprocess against the emulator over HTTP."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from syncagent.config import load_config
from syncagent.emulator.server import EmulatorServer
from syncagent.ledger import Ledger
from tests.e2e.agent_support import Agent, agent_settings
from tests.e2e.compass_writer import CompassWriter
from tests.e2e.support import SYNCAGENT, RemoteView, md5_file, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MIB = 1024 * 1024


@pytest.fixture
def view(emulator: EmulatorServer) -> Iterator[RemoteView]:
    remote = RemoteView(emulator.url)
    yield remote
    remote.close()


def start(agents: list[Agent], config: Path, name: str = "agent") -> Agent:
    agent = Agent(config, name).start()
    agents.append(agent)
    return agent


def synced_count(config: Path, root: Path) -> int:
    """Files the agent has recorded in sync, read from its ledger."""
    ledger = ledger_of(config)
    try:
        mapping_id = ledger.find_mapping(str(root), 1001)
        return 0 if mapping_id is None else ledger.count_entries(mapping_id)
    finally:
        ledger.close()


def ledger_of(config: Path) -> Ledger:
    """The ledger the agent of `config` keeps."""
    return Ledger(load_config(config).ledger_url)


def failures_in_ledger(config: Path, root: Path) -> dict[str, str]:
    """The failures the agent has recorded, read from its ledger (quicker than
    `status`, which the tests ask once at the end)."""
    ledger = ledger_of(config)
    try:
        mapping_id = ledger.find_mapping(str(root), 1001)
        if mapping_id is None:
            return {}
        return {f.rel_path: f.reason for f in ledger.failures(mapping_id)}
    finally:
        ledger.close()


def first_pass_done(config: Path, root: Path) -> bool:
    """Whether the agent's first upload pass over `root` has finished."""
    ledger = ledger_of(config)
    try:
        mapping_id = ledger.find_mapping(str(root), 1001)
        last = None if mapping_id is None else ledger.last_pass(mapping_id, "upload")
        return last is not None and last.finished_at is not None
    finally:
        ledger.close()


def only(assets: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(assets) == 1, f"expected one asset, got {len(assets)}"
    return assets[0]


def test_slow_copy_burst_rename_and_move_while_status_watches(
    tmp_path: Path,
    emulator: EmulatorServer,
    view: RemoteView,
    agents: list[Agent],
    ledger_url: str,
) -> None:
    root = tmp_path / "watched"
    for folder in ("a", "b", "burst"):
        (root / folder).mkdir(parents=True)
    (root / "a" / "clip.txt").write_bytes(b"moves from a to b")
    mapping = {"local": str(root), "folder_id": 1001, "on_local_delete": "remove"}
    config = write_config(
        tmp_path,
        emulator.url,
        [mapping],
        extra=agent_settings(settle_seconds=1.0, shutdown_timeout=10),
        ledger=ledger_url,
    )
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: synced_count(config, root) == 1)

    # A file copied in slowly goes up once, whole, after it settles.
    view.http.delete("/_emulator/stats")
    chunks = [random.Random(i).randbytes(64 * 1024) for i in range(6)]
    with open(root / "slow.mov", "wb") as stream:
        for chunk in chunks:
            stream.write(chunk)
            stream.flush()
            time.sleep(0.4)
    agent.wait_for("slow.mov", lambda: synced_count(config, root) == 2)
    slow = only(view.tree(1001)["slow.mov"])
    assert slow["status"] == "complete"
    assert slow["size"] == 6 * 64 * 1024
    assert slow["checksum"] == hashlib.md5(b"".join(chunks)).hexdigest()
    assert view.stats()["part_bytes_received"] == 6 * 64 * 1024
    assert view.get(f"/api/v1/asset_items/{slow['id']}/revisions") == []

    # A burst of 500 small files: all arrive, each once.
    for index in range(500):
        (root / "burst" / f"f{index:04d}.txt").write_text(f"file {index}\n")
    # The burst settles for a second and takes seconds to go up: status sees it wait.
    waiting = agent.status()["mappings"][0]
    assert waiting["pending"] > 0 and waiting["synced"] < 502
    agent.wait_for("the burst", lambda: synced_count(config, root) == 502, 120)
    burst = view.tree(1001)
    names = sorted(p for p in burst if p.startswith("burst/"))
    assert names == [f"burst/f{i:04d}.txt" for i in range(500)]
    assert all(len(burst[p]) == 1 for p in names)
    assert all(burst[p][0]["status"] == "complete" for p in names)

    # Status while the agent runs: everything synced, nothing pending or failed.
    status = agent.status()
    assert status["agent_running"] is True
    [mapping] = status["mappings"]
    assert (mapping["synced"], mapping["pending"]) == (502, 0)
    assert (mapping["in_flight"], mapping["failed"]) == (0, 0)
    assert mapping["last_passes"]["upload"]["outcome"] == "ok"

    # A rename in place renames the asset; a move between folders moves it.
    asset_id = burst["burst/f0007.txt"][0]["id"]
    (root / "burst" / "f0007.txt").rename(root / "burst" / "renamed.txt")
    (root / "a" / "clip.txt").rename(root / "b" / "clip.txt")

    def renamed_and_moved() -> bool:
        tree = view.tree(1001)
        return "burst/renamed.txt" in tree and "b/clip.txt" in tree

    agent.wait_for("the rename and the move", renamed_and_moved)
    agent.wait_for(
        "the old asset to leave a/", lambda: "a/clip.txt" not in view.tree(1001)
    )
    tree = view.tree(1001)
    assert only(tree["burst/renamed.txt"])["id"] == asset_id
    assert "burst/f0007.txt" not in tree
    assert only(tree["b/clip.txt"])["checksum"] == md5_file(root / "b" / "clip.txt")
    assert sum(len(v) for p, v in tree.items() if p.startswith("burst/")) == 500
    assert "queued, waiting for it to settle" in agent.log()
    assert "burst/renamed.txt: renamed from burst/f0007.txt" in agent.log()

    assert agent.stop() == 0
    assert "agent stopped" in agent.log()
    assert agent.status()["agent_running"] is False


def _multipart_file(path: Path, parts: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as stream:
        for _ in range(parts):
            stream.write(rng.randbytes(5 * MIB))


def _checkpointed(agent: Agent, parts: int) -> bool:
    """Whether the status shows one upload in flight with `parts` parts confirmed."""
    status = agent.status()
    mapping = status["mappings"][0]
    confirmed = [u["parts_confirmed"] for u in mapping["uploads"]]
    return (
        status["agent_running"] and mapping["in_flight"] == 1 and confirmed >= [parts]
    )


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_an_upload_cut_by_a_stop_resumes_at_the_next_start(
    how: str,
    tmp_path: Path,
    emulator: EmulatorServer,
    view: RemoteView,
    agents: list[Agent],
) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(root), "folder_id": 1001}],
        concurrency=4,
        extra=agent_settings(settle_seconds=0.5, shutdown_timeout=1),
    )
    # The last four parts answer slowly, so the stop lands after the checkpoint of
    # the first sixteen and before the end.
    view.set_faults("part:slow@#17+,slow=5")
    big = root / "big.mov"
    _multipart_file(big, 20, seed=7)
    first = start(agents, config, "first")

    first.wait_for("16 confirmed parts", lambda: _checkpointed(first, 16))
    if how == "SIGTERM":
        first.signal(signal.SIGTERM)
        assert first.wait(20) == 0
        assert "stopping now; uploads in flight resume" in first.log()
        stopped = first.status()
        assert (stopped["failed"], stopped["mappings"][0]["in_flight"]) == (0, 1)
    else:
        first.signal(signal.SIGKILL)
        first.wait(20)
    assert synced_count(config, root) == 0

    # The next start resumes the same asset and sends only the parts left.
    view.clear_faults()
    view.http.delete("/_emulator/stats")
    second = start(agents, config, "second")
    second.wait_for("big.mov", lambda: synced_count(config, root) == 1)
    asset = only(view.tree(1001)["big.mov"])
    assert asset["status"] == "complete"
    assert asset["checksum"] == md5_file(big)
    resent = view.stats()["part_bytes_received"]
    assert 0 < resent <= 4 * 5 * MIB
    assert "resuming 1 upload left in flight" in second.log()
    assert f"big.mov: uploaded, {20 * 5 * MIB} bytes ({resent} sent now" in second.log()
    assert second.stop() == 0


def test_the_polling_observer_finds_what_no_inotify_event_announced(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    """Writes through a hard link outside the folder raise no inotify event on it,
    as writes from another machine on a network share raise none."""
    root, outside = tmp_path / "share", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "cut.mov").write_bytes(b"first cut")
    (root / "cut.mov").hardlink_to(outside / "cut.mov")
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(root), "folder_id": 1001, "watch": "poll"}],
        extra=agent_settings(settle_seconds=0.5, rescan_interval=3600),
    )
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: synced_count(config, root) == 1)
    time.sleep(1.5)  # the poller's first snapshot

    with open(outside / "cut.mov", "ab") as stream:
        stream.write(b", then the director's cut")
    (outside / "new.mov").write_bytes(b"made elsewhere")
    os.link(outside / "new.mov", root / "new.mov")

    def revised() -> bool:
        tree = view.tree(1001)
        return "new.mov" in tree and tree["cut.mov"][0]["checksum"] == md5_file(
            outside / "cut.mov"
        )

    agent.wait_for("the revision and the new file", revised, 30)
    asset = only(view.tree(1001)["cut.mov"])
    revisions = view.get(f"/api/v1/asset_items/{asset['id']}/revisions")
    assert len(revisions) == 1
    assert "polling" in agent.log()
    assert agent.stop() == 0


def test_drop_box_moves_to_done_and_failed_and_status_tells(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root = tmp_path / "dropbox"
    root.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {
                "local": str(root),
                "folder_id": 1001,
                "mode": "dropbox",
                "after_ingest": "move",
            }
        ],
        extra=agent_settings(settle_seconds=0.5),
    )
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: agent.status()["agent_running"])

    (root / "promo").mkdir()
    (root / "promo" / "good.mov").write_bytes(b"good")
    (root / "promo" / "good.mov.json").write_text(
        '{"custom_metadata_fields": [{"category": "MPG", "label": "MPAA Band",'
        ' "value": "Green"}], "titles": [{"gpms_id": 987}]}'
    )
    (root / "bad.mov").write_bytes(b"bad")
    (root / "bad.mov.json").write_text(
        '{"custom_metadata_fields": [{"category": "MPG", "label": "MPAA Band",'
        ' "value": "Purple"}]}'
    )
    (root / "notes.json").write_text('{"a plain": "json file"}')

    done = root / "done"
    agent.wait_for(
        "done/ and failed/",
        lambda: (
            (done / "promo" / "good.mov").exists()
            and (done / "notes.json").exists()
            and (root / "failed" / "bad.mov.error.txt").exists()
        ),
    )
    assert (done / "promo" / "good.mov.json").exists()
    assert (root / "failed" / "bad.mov").read_bytes() == b"bad"
    assert (root / "failed" / "bad.mov.json").exists()
    reason = (root / "failed" / "bad.mov.error.txt").read_text()
    assert "'Purple' is not in the vocabulary mpaa_band" in reason

    tree = view.tree(1001)
    assert sorted(tree) == ["notes.json", "promo/good.mov"]
    good = view.post(
        "/api/v1/asset_items/batch", {"ids": [tree["promo/good.mov"][0]["id"]]}
    )
    detail = good["asset_items"][0]
    assert detail["custom_metadata"] == {"mpg": {"mpaa_band": "Green"}}
    assert [t["gpms_id"] for t in detail["titles"]] == [987]

    status = agent.status()
    [mapping] = status["mappings"]
    assert status["agent_running"] is True
    assert (mapping["pending"], mapping["in_flight"], mapping["failed"]) == (0, 0, 1)
    assert mapping["failures"][0]["rel_path"] == "failed/bad.mov"
    assert "not in the vocabulary" in mapping["failures"][0]["reason"]

    # Nothing in done/ or failed/ is ingested again by the next start's full pass.
    assert agent.stop() == 0
    before = status["mappings"][0]["last_passes"]["upload"]["finished_at"]
    again = start(agents, config, "again")

    def passed_again() -> bool:
        last = again.status()["mappings"][0]["last_passes"]["upload"]
        return last["finished_at"] is not None and last["finished_at"] > before

    again.wait_for("the pass at start", passed_again)
    assert sorted(view.tree(1001)) == ["notes.json", "promo/good.mov"]
    assert again.stop() == 0


def test_pulls_run_on_the_schedule_beside_the_uploads(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    """One mapping uploads into folder 1001, another mirrors 1001 on a schedule."""
    outbox, mirror = tmp_path / "outbox", tmp_path / "mirror"
    outbox.mkdir()
    mirror.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {"local": str(outbox), "folder_id": 1001},
            {"local": str(mirror), "folder_id": 1001, "direction": "download"},
        ],
        extra=agent_settings(settle_seconds=0.5, pull_interval=1),
    )
    agent = start(agents, config)
    (outbox / "cut.mov").write_bytes(b"edit 1")
    agent.wait_for("the pull of cut.mov", (mirror / "cut.mov").exists)
    assert (mirror / "cut.mov").read_bytes() == b"edit 1"
    status = agent.status()
    assert status["mappings"][1]["last_passes"]["pull"]["outcome"] == "ok"

    # One agent per ledger: a second one refuses to start.
    second = subprocess.run(
        [*SYNCAGENT, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "another agent already runs on this ledger" in second.stderr
    agent.signal(signal.SIGINT)
    assert agent.wait() == 0


def test_drop_box_never_writes_through_links_nor_over_what_done_holds(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root, outside = tmp_path / "dropbox", tmp_path / "outside"
    (root / "done").mkdir(parents=True)
    (root / "failed").mkdir()
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    # Planted by someone who may write into the drop box:
    (root / "failed" / "ev.mov.error.txt").symlink_to("../../outside/victim.txt")
    (root / "done" / "promo").symlink_to("../../outside")
    # Left by an earlier drop (a sidecar that came late is an ordinary file):
    (root / "done" / "q.mov.json").write_text("lonely-json-content")
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {
                "local": str(root),
                "folder_id": 1001,
                "mode": "dropbox",
                "after_ingest": "move",
            }
        ],
        extra=agent_settings(settle_seconds=0.5),
    )
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: first_pass_done(config, root))

    (root / "ev.mov").write_bytes(b"ev")
    (root / "ev.mov.json").write_text('{"x": 1}')
    (root / "q.mov").write_bytes(b"q")
    (root / "q.mov.json").write_text('{"titles": [{"gpms_id": 9}]}')
    (root / "promo").mkdir()
    (root / "promo" / "b.mov").write_bytes(b"b")

    def failures() -> dict[str, str]:
        [mapping] = agent.status()["mappings"]
        return {f["rel_path"]: f["reason"] for f in mapping["failures"]}

    done, failed = root / "done", root / "failed"
    agent.wait_for(
        "the three drops",
        lambda: (
            (failed / "ev (2).mov.error.txt").exists()
            and (done / "q (2).mov").exists()
            and "promo/b.mov" in failures_in_ledger(config, root)
        ),
    )
    assert (outside / "victim.txt").read_text() == "precious"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (failed / "ev.mov.error.txt").is_symlink()
    assert "unknown key 'x'" in (failed / "ev (2).mov.error.txt").read_text()
    assert (failed / "ev (2).mov.json").read_text() == '{"x": 1}'
    assert (done / "q.mov.json").read_text() == "lonely-json-content"
    assert (done / "q (2).mov.json").read_text() == '{"titles": [{"gpms_id": 9}]}'
    assert (root / "promo" / "b.mov").read_bytes() == b"b"
    reason = failures()["promo/b.mov"]  # what `status` shows
    assert "done/promo is a symbolic link or a file, not a folder" in reason
    assert sorted(view.tree(1001)) == ["promo/b.mov", "q.mov"]
    assert agent.stop() == 0


def test_new_links_pipes_and_undecodable_names_are_reported_without_a_rescan(
    tmp_path: Path, emulator: EmulatorServer, agents: list[Agent]
) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    (root / "ok.txt").write_bytes(b"ok")
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(root), "folder_id": 1001}],
        extra=agent_settings(settle_seconds=0.5),
    )
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: synced_count(config, root) == 1)

    (root / "link.txt").symlink_to("/etc/hostname")
    os.mkfifo(root / "fifo.txt")
    with open(os.fsencode(root) + b"/bad\xfe.txt", "wb") as stream:
        stream.write(b"x")

    agent.wait_for(
        "the three failures", lambda: len(failures_in_ledger(config, root)) == 3, 30
    )
    status = agent.status()
    assert status["failed"] == 3
    reasons = {f["rel_path"]: f["reason"] for f in status["mappings"][0]["failures"]}
    assert reasons["link.txt"] == "symbolic link to outside the mapping; not followed"
    assert reasons["fifo.txt"].startswith("not a regular file")
    [bad] = [p for p in reasons if p.startswith("bad")]
    assert "not valid UTF-8" in reasons[bad]
    log = agent.log()
    assert "WARNING link.txt: symbolic link to outside the mapping" in log
    assert "WARNING fifo.txt: not a regular file" in log
    assert agent.stop() == 0


def test_two_way_local_deletes_and_folder_renames_stay_so_under_the_agent(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root = tmp_path / "both"
    for rel_dir in ("LSub/deeper", "RSub/dup"):
        (root / rel_dir).mkdir(parents=True)
    files = {
        "local1.txt": b"l1",
        "LSub/ls.txt": b"ls",
        "LSub/deeper/d.txt": b"d",
        "RSub/rs.txt": b"rs",
    }
    for rel_path, data in files.items():
        (root / rel_path).write_bytes(data)
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(root), "folder_id": 1001, "direction": "both"}],
        extra=agent_settings(settle_seconds=0.5, pull_interval=1),
    )
    agent = start(agents, config)
    agent.wait_for("the first upload", lambda: synced_count(config, root) == 4)

    (root / "local1.txt").unlink()
    shutil.rmtree(root / "LSub")
    (root / "RSub").rename(root / "RSub2")
    # The pass that uploads RSub2/rs.txt has seen the deletes made before it.
    agent.wait_for("the move", lambda: "RSub2/rs.txt" in view.tree(1001))

    def last_started(kind: str) -> datetime:
        ledger = ledger_of(config)
        try:
            mapping_id = ledger.find_mapping(str(root), 1001)
            assert mapping_id is not None
            last = ledger.last_pass(mapping_id, kind)
            assert last is not None
            return last.started_at
        finally:
            ledger.close()

    moved_at = last_started("upload")
    agent.wait_for("a pull after the move", lambda: last_started("pull") > moved_at)
    time.sleep(1.5)  # and one more, a pull every second
    local = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert local == ["RSub2", "RSub2/dup", "RSub2/rs.txt"]
    # Kept in Compass (on_local_delete = "keep"). RSub/rs.txt stays too when a pull
    # saw the rename before an upload pass did: then it is a delete and a new file.
    remote = set(view.tree(1001))
    kept = {"LSub/deeper/d.txt", "LSub/ls.txt", "RSub2/rs.txt", "local1.txt"}
    assert kept <= remote <= kept | {"RSub/rs.txt"}
    assert agent.stop() == 0


def last_finished(config: Path, root: Path, kind: str) -> datetime | None:
    """When the agent's last pass of `kind` over `root` finished, from its ledger."""
    ledger = ledger_of(config)
    try:
        mapping_id = ledger.find_mapping(str(root), 1001)
        last = None if mapping_id is None else ledger.last_pass(mapping_id, kind)
        return None if last is None else last.finished_at
    finally:
        ledger.close()


def test_two_way_conflict_sends_this_side_up_right_after_the_pull_keeps_both(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root = tmp_path / "both"
    root.mkdir()
    (root / "r3.txt").write_bytes(b"r3 as synced\n")
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(root), "folder_id": 1001, "direction": "both"}],
        extra=agent_settings(settle_seconds=0.5, pull_interval=4),
    )
    agent = start(agents, config)
    agent.wait_for("the first upload", lambda: synced_count(config, root) == 1)
    asset_id = only(view.tree(1001)["r3.txt"])["id"]
    pulled_at = last_finished(config, root, "pull")
    agent.wait_for(
        "a scheduled pull", lambda: last_finished(config, root, "pull") != pulled_at
    )

    # Right after a pull: both sides change; an upload pass sees it before a pull.
    writer = CompassWriter(emulator.url)
    try:
        writer.revise(asset_id, "r3.txt", b"r3 changed remotely\n")
    finally:
        writer.close()
    (root / "r3.txt").write_bytes(b"r3 changed locally\n")

    # The upload pass leaves the conflict to a pull, which it asks for; the pull
    # keeps Compass's version beside the file; this side's version then goes up
    # at once, not at the next rescan.
    agent.wait_for(
        "the local version in Compass",
        lambda: (
            only(view.tree(1001)["r3.txt"])["checksum"] == md5_file(root / "r3.txt")
        ),
        timeout=12,
    )
    assert "r3.txt: changed in Compass too since the last sync" in agent.log()
    [copy] = [p for p in root.iterdir() if p.name != "r3.txt"]
    assert copy.read_bytes() == b"r3 changed remotely\n"
    assert failures_in_ledger(config, root) == {}
    assert agent.stop() == 0


def test_drop_box_file_waits_for_a_sidecar_still_being_written(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root = tmp_path / "dropbox"
    root.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {
                "local": str(root),
                "folder_id": 1001,
                "mode": "dropbox",
                "after_ingest": "move",
            }
        ],
        extra=agent_settings(settle_seconds=1.0),
    )
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: first_pass_done(config, root))

    # The file settles while its sidecar is still being written.
    (root / "sc.mov").write_bytes(b"sc")
    time.sleep(0.5)
    with open(root / "sc.mov.json", "w") as sidecar:
        sidecar.write('{"titles": [{"gpms_id"')
        sidecar.flush()
        time.sleep(0.7)
        sidecar.write(": 42}]}")

    agent.wait_for("done/sc.mov", (root / "done" / "sc.mov").exists)
    assert (
        root / "done" / "sc.mov.json"
    ).read_text() == '{"titles": [{"gpms_id": 42}]}'
    assert not (root / "failed").exists()
    [asset] = view.tree(1001)["sc.mov"]
    detail = view.post("/api/v1/asset_items/batch", {"ids": [asset["id"]]})
    assert [t["gpms_id"] for t in detail["asset_items"][0]["titles"]] == [42]
    assert sorted(view.tree(1001)) == ["sc.mov"]
    assert agent.stop() == 0


def test_drop_box_file_renamed_while_it_goes_up_is_one_asset(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root = tmp_path / "dropbox"
    root.mkdir()
    config = write_config(
        tmp_path,
        emulator.url,
        [
            {
                "local": str(root),
                "folder_id": 1001,
                "mode": "dropbox",
                "after_ingest": "move",
            }
        ],
        extra=agent_settings(settle_seconds=0.5),
    )
    view.set_faults("part:slow@#1+,slow=2")
    agent = start(agents, config)
    agent.wait_for("the first pass", lambda: first_pass_done(config, root))

    (root / "mid.mov").write_bytes(b"renamed while it goes up")

    def sending() -> bool:
        ledger = ledger_of(config)
        try:
            mapping_id = ledger.find_mapping(str(root), 1001)
            uploads = [] if mapping_id is None else ledger.uploads(mapping_id)
            return any(u.asset_id is not None for u in uploads)
        finally:
            ledger.close()

    agent.wait_for("the upload to start", sending)
    time.sleep(0.5)  # initiated: the file is open and its part on the way (slowly)
    (root / "mid.mov").rename(root / "mid-renamed.mov")

    done = root / "done" / "mid-renamed.mov"
    agent.wait_for("done/mid-renamed.mov", done.exists)
    assert done.read_bytes() == b"renamed while it goes up"
    tree = view.tree(1001)
    assert sorted(tree) == ["mid-renamed.mov"]
    assert len(tree["mid-renamed.mov"]) == 1
    assert "mid-renamed.mov: renamed from mid.mov" in agent.log()
    assert agent.stop() == 0


def test_two_way_edit_meeting_a_rename_in_compass_asks_for_the_pull_at_once(
    tmp_path: Path, emulator: EmulatorServer, view: RemoteView, agents: list[Agent]
) -> None:
    root = tmp_path / "both"
    root.mkdir()
    (root / "draft.txt").write_bytes(b"draft as synced\n")
    config = write_config(
        tmp_path,
        emulator.url,
        [{"local": str(root), "folder_id": 1001, "direction": "both"}],
        extra=agent_settings(settle_seconds=0.5, pull_interval=600),
    )
    agent = start(agents, config)
    agent.wait_for("the first upload", lambda: synced_count(config, root) == 1)
    asset_id = only(view.tree(1001)["draft.txt"])["id"]
    agent.wait_for("the first pull", lambda: last_finished(config, root, "pull"))

    writer = CompassWriter(emulator.url)
    try:
        writer.rename({asset_id: "final.txt"})
    finally:
        writer.close()
    (root / "draft.txt").write_bytes(b"draft edited here\n")

    # The scheduled pull is ten minutes away: the upload pass that meets the
    # change asks for one, which renames the file here; the change then goes up.
    agent.wait_for(
        "the change in Compass under its new name",
        lambda: (
            [a["checksum"] for a in view.tree(1001).get("final.txt", [])]
            == [hashlib.md5(b"draft edited here\n").hexdigest()]
        ),
        timeout=15,
    )
    assert sorted(p.name for p in root.iterdir()) == ["final.txt"]
    assert set(view.tree(1001)) == {"final.txt"}
    # Settled within seconds by the agent itself: news, not a warning.
    assert "draft.txt: renamed in Compass since the last sync" in agent.log()
    assert [line for line in agent.log().splitlines() if " WARNING " in line] == []
    agent.wait_for("no failure left", lambda: failures_in_ledger(config, root) == {})
    assert agent.stop() == 0

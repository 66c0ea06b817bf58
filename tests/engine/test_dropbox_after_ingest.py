"""A drop box after ingest: what its log lines say, files that cannot leave, and the
subfolders their leaving empties."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncagent.config import MappingConfig
from syncagent.engine.dropbox import DropBoxHooks
from syncagent.engine.safe_root import Dir
from syncagent.ledger import EntryRecord, Ledger


class NoVocabularies:
    """Stands in for the client: after ingest never asks Compass anything."""

    def vocabularies(self) -> dict[str, list[dict[str, str]]]:
        raise AssertionError("not called after ingest")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    box = tmp_path / "box"
    box.mkdir()
    return box


def make_hooks(
    root: Path, ledger: Ledger, after: str, *, remove_emptied: bool = True
) -> tuple[DropBoxHooks, int]:
    mapping = MappingConfig(
        local_root=root,
        folder_id=1001,
        mode="dropbox",
        after_ingest=after,
        remove_emptied_folders=remove_emptied,
    )
    mapping_id = ledger.ensure_mapping(str(root), 1001)
    client: Any = NoVocabularies()  # answers the one call the hooks make
    return DropBoxHooks(mapping, mapping_id, client, ledger), mapping_id


def drop(root: Path, ledger: Ledger, mapping_id: int, rel_path: str) -> None:
    """A file that went up: on disk, with its folders' and its own entries."""
    path = root / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rel_path.encode())
    parts = rel_path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        rel_dir = "/".join(parts[:depth])
        ledger.put_entry(
            mapping_id,
            EntryRecord(
                rel_dir, "dir", 2000 + depth, None, parts[depth - 1], *[None] * 4
            ),
        )
    st = path.stat()
    ledger.put_entry(
        mapping_id,
        EntryRecord(
            rel_path,
            "file",
            1001,
            7,
            path.name,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            "0" * 32,
        ),
    )


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


# -- the sidecar in its file's lines --------------------------------------------------


@pytest.mark.parametrize("after", ["move", "delete"])
def test_the_line_of_a_file_that_leaves_names_its_sidecar(
    root: Path, ledger: Ledger, after: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.engine.dropbox")
    hooks, mapping_id = make_hooks(root, ledger, after)
    drop(root, ledger, mapping_id, "a.mov")
    (root / "a.mov.json").write_text("{}")
    drop(root, ledger, mapping_id, "b.mov")

    hooks.synced("a.mov", 7)
    hooks.synced("b.mov", 8)

    where = {"move": "moved to done/a.mov", "delete": "deleted from the drop box"}
    bare = {"move": "moved to done/b.mov", "delete": "deleted from the drop box"}
    assert messages(caplog, logging.INFO) == [
        f"a.mov: asset 7; {where[after]}, with its sidecar a.mov.json",
        f"b.mov: asset 8; {bare[after]}",
    ]


def test_a_file_moved_to_failed_names_its_sidecar(
    root: Path, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.engine.dropbox")
    hooks, _ = make_hooks(root, ledger, "move")
    (root / "bad.mov").write_bytes(b"b")
    (root / "bad.mov.json").write_text("{bad")

    hooks.failed("bad.mov", "sidecar bad.mov.json: not valid JSON", permanent=True)

    assert messages(caplog, logging.INFO) == [
        "bad.mov: moved to failed/bad.mov, with its sidecar bad.mov.json: "
        "sidecar bad.mov.json: not valid JSON"
    ]


# -- a verified file that cannot leave ------------------------------------------------


@pytest.fixture
def undeletable(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names whose unlink fails as on an immutable file (chattr +i)."""
    names: set[str] = set()
    unlink = Dir.unlink

    def refusing(self: Dir, name: str) -> None:
        if name in names:
            raise PermissionError(1, "Operation not permitted", name)
        unlink(self, name)

    monkeypatch.setattr(Dir, "unlink", refusing)
    return names


def test_a_file_that_cannot_be_deleted_is_a_failure_warned_about_once(
    root: Path,
    ledger: Ledger,
    undeletable: set[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.engine.dropbox")
    hooks, mapping_id = make_hooks(root, ledger, "delete")
    drop(root, ledger, mapping_id, "imm.txt")
    undeletable.add("imm.txt")

    hooks.synced("imm.txt", 7)  # the pass that uploaded it
    for _ in range(3):
        make_hooks(root, ledger, "delete")[0].recover()  # the passes after it

    [failure] = ledger.failures(mapping_id)
    assert (failure.rel_path, failure.permanent, failure.count) == ("imm.txt", True, 4)
    assert failure.reason == "uploaded, but not deleted: Operation not permitted"
    assert messages(caplog, logging.WARNING) == [
        "imm.txt: uploaded, but not deleted: Operation not permitted; each pass "
        "tries again"
    ]
    assert (root / "imm.txt").exists()
    assert list(ledger.entries(mapping_id)) == ["imm.txt"]

    undeletable.clear()
    make_hooks(root, ledger, "delete")[0].recover()

    assert not (root / "imm.txt").exists()
    assert ledger.failures(mapping_id) == []
    assert ledger.entries(mapping_id) == {}


def test_a_file_that_cannot_move_to_done_is_warned_about_once(
    root: Path, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncagent.engine.dropbox")
    hooks, mapping_id = make_hooks(root, ledger, "move")
    drop(root, ledger, mapping_id, "a.mov")
    (root / "done").write_bytes(b"a file where done/ should be")

    hooks.synced("a.mov", 7)
    hooks.recover()

    assert len(messages(caplog, logging.WARNING)) == 1
    [failure] = ledger.failures(mapping_id)
    assert failure.reason.startswith("uploaded, but not moved to done/: ")
    assert failure.count == 2

    (root / "done").unlink()
    hooks.recover()

    assert (root / "done/a.mov").exists()
    assert ledger.failures(mapping_id) == []


# -- subfolders the ingest empties ----------------------------------------------------


@pytest.mark.parametrize("after", ["move", "delete"])
def test_folders_the_ingest_empties_are_removed_up_to_the_root(
    root: Path, ledger: Ledger, after: str
) -> None:
    hooks, mapping_id = make_hooks(root, ledger, after)
    for rel_path in ("r1/r2/a.txt", "r1/b.txt", "top.txt"):
        drop(root, ledger, mapping_id, rel_path)
    (root / "r1/r2/a.txt.json").write_text("{}")

    hooks.synced("r1/r2/a.txt", 7)

    assert not (root / "r1/r2").exists()
    assert (root / "r1/b.txt").exists()  # r1 still holds a file: it stays

    hooks.synced("r1/b.txt", 8)
    hooks.synced("top.txt", 9)

    assert sorted(os.listdir(root)) == (["done"] if after == "move" else [])
    assert ledger.entries(mapping_id) == {}  # the folders' entries went with them
    if after == "move":
        assert (root / "done/r1/r2/a.txt").exists()
        assert (root / "done/r1/r2/a.txt.json").exists()


def test_folders_that_hold_anything_or_were_empty_before_stay(
    root: Path, ledger: Ledger
) -> None:
    hooks, mapping_id = make_hooks(root, ledger, "delete")
    for rel_path in ("hidden/a.txt", "nested/b.txt", "linked/c.txt", "mine/d.txt"):
        drop(root, ledger, mapping_id, rel_path)
    (root / "hidden/.keep").write_bytes(b"")  # excluded by default: never ingested
    (root / "nested/made-meanwhile").mkdir()
    (root / "linked/to-elsewhere").symlink_to(root / "mine")
    (root / "empty-before").mkdir()
    (root / "mine/empty-before").mkdir()

    for rel_path in ("hidden/a.txt", "nested/b.txt", "linked/c.txt", "mine/d.txt"):
        hooks.synced(rel_path, 7)

    assert sorted(os.listdir(root)) == [
        "empty-before",
        "hidden",
        "linked",
        "mine",
        "nested",
    ]
    assert (root / "mine/empty-before").is_dir()
    assert (root / "linked/to-elsewhere").is_symlink()
    assert sorted(ledger.entries(mapping_id)) == ["hidden", "linked", "mine", "nested"]


@pytest.mark.parametrize("after", ["move", "delete"])
def test_emptied_folders_stay_unless_the_mapping_asks_to_remove_them(
    root: Path, ledger: Ledger, after: str
) -> None:
    # Hot folders: people and scripts drop into the same subfolders again.
    hooks, mapping_id = make_hooks(root, ledger, after, remove_emptied=False)
    drop(root, ledger, mapping_id, "client-a/shoot/a.txt")

    hooks.synced("client-a/shoot/a.txt", 7)

    assert (root / "client-a/shoot").is_dir()
    assert os.listdir(root / "client-a/shoot") == []
    assert sorted(ledger.entries(mapping_id)) == ["client-a", "client-a/shoot"]


def test_a_file_moved_to_failed_leaves_no_empty_folder_behind(
    root: Path, ledger: Ledger
) -> None:
    hooks, _ = make_hooks(root, ledger, "move")
    (root / "shoot/day1").mkdir(parents=True)
    (root / "shoot/day1/bad.mov").write_bytes(b"b")

    hooks.failed("shoot/day1/bad.mov", "Compass refused it", permanent=True)

    assert sorted(os.listdir(root)) == ["failed"]
    assert (root / "failed/shoot/day1/bad.mov").exists()


def test_nothing_is_removed_in_keep_mode(root: Path, ledger: Ledger) -> None:
    hooks, mapping_id = make_hooks(root, ledger, "keep")
    drop(root, ledger, mapping_id, "r1/a.txt")
    hooks.synced("r1/a.txt", 7)
    assert (root / "r1/a.txt").exists()


@pytest.mark.parametrize("after", ["move", "delete"])
def test_a_drop_written_to_after_its_upload_stays_for_a_revision(
    root: Path, ledger: Ledger, after: str, caplog: pytest.LogCaptureFixture
) -> None:
    hooks, mapping_id = make_hooks(root, ledger, after)
    drop(root, ledger, mapping_id, "render.mov")
    with (root / "render.mov").open("ab") as writer:
        writer.write(b" and the frames its encoder wrote after a pause")

        hooks.synced("render.mov", 7)

    assert (root / "render.mov").exists()  # neither moved nor deleted
    assert not (root / "done").exists()
    kept = ledger.entry(mapping_id, "render.mov")
    assert kept is not None and kept.asset_id == 7  # its next upload: a revision
    [warning] = messages(caplog, logging.WARNING)
    assert warning.startswith("render.mov: written to again after its upload")


def test_a_file_that_cannot_leave_its_folder_leaves_no_copy_in_done(
    root: Path, ledger: Ledger, undeletable: set[str]
) -> None:
    # Its folder forbids removing names: each pass links it into done/, then
    # fails to remove it here; the link must not stay (it did: one more per pass).
    hooks, mapping_id = make_hooks(root, ledger, "move")
    drop(root, ledger, mapping_id, "hot/clip.mov")
    (root / "hot/clip.mov.json").write_text("{}")
    undeletable.add("clip.mov")

    hooks.synced("hot/clip.mov", 7)
    for _ in range(3):
        make_hooks(root, ledger, "move")[0].recover()

    assert [p for p in (root / "done").rglob("*") if not p.is_dir()] == []
    assert (root / "hot/clip.mov").stat().st_nlink == 1
    [failure] = ledger.failures(mapping_id)
    assert failure.reason == "uploaded, but not moved to done/: Operation not permitted"

    undeletable.clear()
    make_hooks(root, ledger, "move")[0].recover()

    assert sorted(p.name for p in (root / "done/hot").iterdir()) == [
        "clip.mov",
        "clip.mov.json",
    ]
    assert ledger.failures(mapping_id) == []

"""The scanner: files with their stat, problems with reasons, no links followed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncagent.config import DEFAULT_EXCLUDES
from syncagent.engine.filters import PathFilter
from syncagent.engine.scanner import scan_tree

RULES = PathFilter(["*"], DEFAULT_EXCLUDES)


def test_finds_nested_files_with_their_stat(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "clip.mov").write_bytes(b"x" * 7)
    (tmp_path / "top.jpg").write_bytes(b"")

    found = scan_tree(tmp_path, RULES)

    assert set(found.files) == {"a/b/clip.mov", "top.jpg"}
    assert found.dirs == {"a", "a/b"}
    clip = found.files["a/b/clip.mov"]
    st = os.stat(tmp_path / "a" / "b" / "clip.mov")
    assert (clip.size, clip.mtime_ns, clip.inode) == (7, st.st_mtime_ns, st.st_ino)
    assert found.problems == []


def test_skips_hidden_and_temporary_files(tmp_path: Path) -> None:
    for name in [
        ".DS_Store",
        "movie.mov.part",
        "~$report.docx",
        "x.crdownload",
        "a.swp",
    ]:
        (tmp_path / name).write_text("t")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "inside.jpg").write_text("t")
    (tmp_path / "Thumbs.db").write_text("t")
    (tmp_path / "keep.jpg").write_text("t")

    found = scan_tree(tmp_path, RULES)

    assert set(found.files) == {"keep.jpg"}
    assert found.dirs == set()


def test_links_are_never_followed_and_bad_ones_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "real.txt").write_text("real")
    (root / "inside-link.txt").symlink_to(root / "real.txt")
    (root / "escape.txt").symlink_to(outside)
    (root / "broken.txt").symlink_to(root / "missing.txt")
    (root / "dir-escape").symlink_to(tmp_path)

    found = scan_tree(root, RULES)

    assert set(found.files) == {"real.txt"}
    reasons = {p.rel_path: p.reason for p in found.problems}
    assert set(reasons) == {"escape.txt", "broken.txt", "dir-escape"}
    assert "outside the mapping" in reasons["escape.txt"]
    assert "broken" in reasons["broken.txt"]


def test_unlistable_folder_is_reported_and_the_rest_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.txt").write_text("x")
    (tmp_path / "ok.txt").write_text("ok")
    real_scandir = os.scandir

    def refusing_scandir(path: str) -> object:
        if os.path.basename(os.path.normpath(path)) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    found = scan_tree(tmp_path, RULES)

    assert set(found.files) == {"ok.txt"}
    assert [(p.rel_path, p.reason) for p in found.problems] == [
        ("locked", "cannot list the folder: Permission denied")
    ]


def test_name_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    bad = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(bad, "wb") as stream:
        stream.write(b"latin-1 name")
    (tmp_path / "fine.txt").write_text("ok")

    found = scan_tree(tmp_path, RULES)

    assert set(found.files) == {"fine.txt"}
    assert len(found.problems) == 1
    assert "UTF-8" in found.problems[0].reason


def test_include_and_path_globs(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.mov").write_text("x")
    (tmp_path / "raw" / "a.txt").write_text("x")
    (tmp_path / "b.mov").write_text("x")

    found = scan_tree(tmp_path, PathFilter(["*.mov"], ["raw/a.mov"]))

    assert set(found.files) == {"b.mov"}


def listing_then(action: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the first listing of the root run `action` between its listing and the
    walk's look at each entry, as a rename at that instant would."""
    real_scandir = os.scandir
    fired: list[bool] = []

    def racing_scandir(path: str) -> Any:
        entries = real_scandir(path)
        if fired:
            return entries
        fired.append(True)
        with entries:
            listed = list(entries)
        action()
        return contextlib.nullcontext(listed)

    monkeypatch.setattr(os, "scandir", racing_scandir)


def test_a_file_gone_between_listing_and_stat_is_no_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stays.txt").write_text("s")
    (tmp_path / "moves.txt").write_text("m")
    listing_then(
        lambda: (tmp_path / "moves.txt").rename(tmp_path / "moved.txt"), monkeypatch
    )

    found = scan_tree(tmp_path, RULES)

    assert set(found.files) == {"stays.txt"}
    assert found.problems == []
    assert not found.sees("moves.txt") and found.may_have_moved("moves.txt")
    assert found.sees("stays.txt") and not found.may_have_moved("stays.txt")


def test_a_folder_gone_before_it_is_listed_is_no_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "a.mov").write_text("a")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")

    def move_and_delete() -> None:
        (tmp_path / "day1").rename(tmp_path / "day2")
        (tmp_path / "link").unlink()

    listing_then(move_and_delete, monkeypatch)

    found = scan_tree(tmp_path, RULES)

    assert found.files == {} and found.dirs == set()
    assert found.problems == []
    assert found.may_have_moved("day1/a.mov") and not found.sees("day1/a.mov")


def test_problems_carry_when_their_path_last_changed(tmp_path: Path) -> None:
    bad = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(bad, "wb") as stream:
        stream.write(b"latin-1 name")

    [problem] = scan_tree(tmp_path, RULES).problems

    assert problem.changed_ns == os.lstat(bad).st_ctime_ns


def test_a_name_with_a_backslash_is_reported_not_sent(tmp_path: Path) -> None:
    (tmp_path / "back\\slash.txt").write_bytes(b"x")
    (tmp_path / "fine.txt").write_bytes(b"y")

    tree = scan_tree(tmp_path, PathFilter(["*"], []))

    assert list(tree.files) == ["fine.txt"]
    assert [(p.rel_path, p.reason.split(",")[0]) for p in tree.problems] == [
        ("back\\slash.txt", "the name holds a backslash")
    ]

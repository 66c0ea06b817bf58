"""The scanner: files with their stat, problems with reasons, no links followed."""

from __future__ import annotations

import os
from pathlib import Path

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

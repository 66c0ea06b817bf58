"""Include and exclude globs."""

from __future__ import annotations

from syncagent.config import DEFAULT_EXCLUDES
from syncagent.engine.filters import PathFilter


def test_default_excludes_cover_temp_files_of_common_tools() -> None:
    rules = PathFilter(["*"], DEFAULT_EXCLUDES)
    skipped = [
        ".DS_Store",
        "a/.hidden",
        "clip.mov.part",
        "setup.exe.crdownload",
        "~$budget.xlsx",
        ".notes.txt.swp",
        "Thumbs.db",
        "draft~",
        ".~lock.sheet.ods#",
    ]
    for rel_path in skipped:
        assert not rules.includes_file(rel_path), rel_path
    for rel_path in ["clip.mov", "a/b/photo.JPG", "-dash.txt", "name with spaces.pdf"]:
        assert rules.includes_file(rel_path), rel_path


def test_pattern_with_slash_matches_the_whole_path() -> None:
    rules = PathFilter(["*"], ["raw/*.tmpx"])
    assert not rules.includes_file("raw/a.tmpx")
    assert rules.includes_file("other/a.tmpx")


def test_excluded_directory_name_matches_at_any_depth() -> None:
    rules = PathFilter(["*"], ["cache"])
    assert rules.excludes("a/cache")
    assert rules.excludes("cache")
    assert not rules.excludes("cachet")


def test_default_excludes_match_whatever_the_case_but_user_globs_do_not() -> None:
    rules = PathFilter(["*"], [*DEFAULT_EXCLUDES, "*.raw"])
    for rel_path in [
        "A.TMP",
        "THUMBS.DB",
        "Desktop.ini",
        "~$Budget.XLSX",
        "clip.MOV.PART",
    ]:
        assert not rules.includes_file(rel_path), rel_path
    assert not rules.includes_file("take.raw")
    assert rules.includes_file("take.RAW")


def test_covers_looks_at_every_folder_above_a_file() -> None:
    rules = PathFilter(["*.jpg"], ["raw", "*.tmp"])

    assert rules.covers("shoot/a.jpg")
    assert not rules.covers("raw/a.jpg")
    assert not rules.covers("shoot/raw/a.jpg")
    assert not rules.covers("shoot/a.tmp")
    assert not rules.covers("shoot/a.mov")


def test_an_include_names_a_file_or_a_folder_taken_whole() -> None:
    rules = PathFilter(["clips", "docs/2026", "*.pdf"], [])

    assert rules.includes_file("clips/a.mov")
    assert rules.includes_file("shoot/clips/deep/b.mov")
    assert rules.includes_file("docs/2026/plan.txt")
    assert rules.includes_file("notes/brief.pdf")
    assert not rules.includes_file("docs/2025/plan.txt")
    assert not rules.includes_file("shoot/a.mov")

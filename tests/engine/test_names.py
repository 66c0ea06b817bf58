"""Remote names made into safe, portable, unique local names."""

from __future__ import annotations

import pytest

from syncagent.engine.names import (
    NameSpace,
    is_tagged,
    name_key,
    safe_name,
    split_suffix,
    tagged,
    tagged_asset_id,
)


@pytest.mark.parametrize(
    ("remote", "local"),
    [
        ("report.pdf", "report.pdf"),
        ("../../escape.txt", "escape.txt"),
        ("..\\..\\escape.txt", "escape.txt"),
        ("a/b.txt", "a_b.txt"),
        ("/etc/passwd", "etc_passwd"),
        ("a\\b.txt", "a_b.txt"),
        ("x\0y", "x_y"),
        ("tab\there\nnewline", "tab_here_newline"),
        ("bell\x07\x7f", "bell__"),
        ("CON.txt", "CON_.txt"),
        ("con", "con_"),
        ("Lpt9.tar.gz", "Lpt9_.tar.gz"),
        ("COM1 .log", "COM1 _.log"),
        ("console.txt", "console.txt"),
        ('what?<a>:"b"|*.txt', "what__a___b___.txt"),
        ("trailing dot.", "trailing dot_"),
        ("trailing space ", "trailing space_"),
        ("..", "_"),
        (".", "_"),
        ("", "_"),
        ("/", "_"),
        (".proxies", "_.proxies"),
        (".SyncAgent-Trash", "_.SyncAgent-Trash"),
        (".syncagent-dl-1.part", "_.syncagent-dl-1.part"),
        (".hidden", ".hidden"),
        ("Cafe\u0301.jpg", "Café.jpg"),
        ("invoice\u202efdp.exe", "invoice_fdp.exe"),
        ("\u2067right\u2069 \u202aleft\u202c.txt", "_right_ _left_.txt"),
        (
            "coder \U0001f469\u200d\U0001f4bb.png",
            "coder \U0001f469\u200d\U0001f4bb.png",
        ),
    ],
)
def test_safe_name(remote: str, local: str) -> None:
    assert safe_name(remote) == local


def test_safe_names_are_one_plain_component() -> None:
    hostile = ["../../escape.txt", "a/b.txt", "CON.txt", "x\0y", "..", "/", "a/../b"]
    for remote in hostile:
        name = safe_name(remote)
        assert "/" not in name and "\\" not in name and "\0" not in name
        assert name not in ("", ".", "..")


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_name("é" * 300 + ".jpg")
    assert name.endswith(".jpg")
    assert len(name.encode("utf-8")) <= 255
    assert name[:-4] == "é" * ((255 - 4) // 2)


def test_a_name_that_fits_the_disk_is_kept_whole() -> None:
    long = "Interview with the harbour master, take 3 " * 5 + ".mov"  # > 200 bytes

    assert safe_name(long) == long


def test_a_tag_cuts_the_stem_so_the_name_still_fits_and_is_recognised() -> None:
    long = "x" * 240 + ".mov"

    named = tagged(long, "asset 4712")
    numbered = tagged(long, "asset 4712 2")

    assert named == "x" * (255 - len(" (asset 4712).mov")) + " (asset 4712).mov"
    assert len(numbered.encode("utf-8")) == 255
    assert is_tagged(named, long, "asset 4712")
    assert is_tagged(numbered, long, "asset 4712")
    assert tagged_asset_id(named) == 4712
    assert not is_tagged(named, "y" * 240 + ".mov", "asset 4712")


def test_fold_case_and_unicode_normalisation() -> None:
    assert name_key("Photo.JPG") == name_key("photo.jpg")
    assert name_key("Cafe\u0301") == name_key("Caf\u00e9")
    assert name_key("STRASSE") == name_key("straße")
    assert name_key("a.txt") != name_key("b.txt")


def test_suffix_and_tags() -> None:
    assert split_suffix("archive.tar.gz") == ("archive.tar", ".gz")
    assert split_suffix(".bashrc") == (".bashrc", "")
    assert split_suffix("notes. final draft") == ("notes. final draft", "")
    assert tagged("photo.jpg", "asset 7") == "photo (asset 7).jpg"
    assert (
        tagged("Photos 2026.11", "folder 3", is_dir=True) == "Photos 2026.11 (folder 3)"
    )


def test_namespace_tags_collisions_and_numbers_repeats() -> None:
    space = NameSpace()
    space.hold("readme.md", "file")
    assert space.claim("photo.jpg", "asset 1") == "photo.jpg"
    assert space.claim("Photo.JPG", "asset 2") == "Photo (asset 2).JPG"
    assert space.claim("PHOTO.jpg", "asset 2") == "PHOTO (asset 2 2).jpg"
    assert space.claim("README.md", "asset 3") == "README (asset 3).md"


def test_a_folder_merges_into_a_local_directory_but_not_a_file() -> None:
    space = NameSpace()
    space.hold("shoot", "dir")
    space.hold("notes", "file")
    assert space.claim("Shoot", "folder 5", is_dir=True) == "Shoot"
    assert space.claim("notes", "folder 6", is_dir=True) == "notes (folder 6)"
    space.hold("clips", "dir")
    assert space.claim("clips", "asset 9") == "clips (asset 9)"

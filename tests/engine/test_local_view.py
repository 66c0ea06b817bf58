"""The pull's look at the disk: every folder listed, however deep its path."""

from __future__ import annotations

import os
from pathlib import Path

from syncagent.engine.local_view import scan_local


def make_deep_tree(root: Path, depth: int, name_length: int) -> list[str]:
    """Folders inside folders, each with one file, made from descriptors (the
    whole path soon passes what the system takes); returns the files' paths."""
    files = []
    rel_dir = ""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            name = f"{level:02d}" + "D" * (name_length - 2)
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            rel_dir = f"{rel_dir}/{name}" if rel_dir else name
            file_fd = os.open(
                f"level{level:02d}.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd
            )
            os.write(file_fd, b"level\n")
            os.close(file_fd)
            files.append(f"{rel_dir}/level{level:02d}.txt")
    finally:
        os.close(fd)
    return files


def test_folders_deeper_than_the_longest_path_are_listed(tmp_path: Path) -> None:
    files = make_deep_tree(tmp_path, depth=20, name_length=250)
    assert len(os.fsencode(str(tmp_path / files[-1]))) > 4096

    view = scan_local(tmp_path)

    assert view.others == set()
    assert sorted(view.files) == sorted(files)
    assert all(view.files[path].size == 6 for path in files)

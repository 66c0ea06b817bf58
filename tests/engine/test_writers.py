"""Files another program still has open for writing are known as such."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncagent.engine.writers import open_for_writing


def test_a_file_open_for_writing_elsewhere_is_known_until_closed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "render.mov"
    path.write_bytes(b"frames")
    assert not open_for_writing(path)

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; f = open(sys.argv[1], 'ab'); print('open', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"open\n"
        assert open_for_writing(path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)

    assert not open_for_writing(path)


def test_a_reader_or_a_missing_file_is_no_writer(tmp_path: Path) -> None:
    path = tmp_path / "clip.mov"
    path.write_bytes(b"frames")

    with path.open("rb"):
        assert not open_for_writing(path)
    assert not open_for_writing(tmp_path / "gone.mov")

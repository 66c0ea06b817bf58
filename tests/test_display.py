"""The progress bars: a count of files on one, sizes and a rate on the other."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from syncagent.display import BarProgress, _Amount, _Rate


def test_the_files_bar_counts_files_and_the_bytes_bar_sizes() -> None:
    console = Console(width=100, record=True, color_system=None)
    bars = Progress(TextColumn("{task.description}"), BarColumn(), _Amount(), _Rate())
    events = BarProgress(bars)

    events.files_planned(3, 30_000_000)
    events.bytes_sent(10_000_000)
    events.file_done("a.mov", "uploaded")
    console.print(bars.get_renderable())

    files, size = console.export_text().splitlines()
    assert files.startswith("files") and "1/3" in files and "bytes" not in files
    assert size.startswith("bytes") and "10.0/30.0 MB" in size

"""The progress bars: a count of files on one, sizes and a rate on the other."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from syncagent.display import BarProgress, _Amount, _Rate, print_summary
from syncagent.engine.pull_report import PullReport
from syncagent.engine.report import PassReport


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


def test_a_dry_run_says_what_it_would_do_in_words() -> None:
    quiet = PassReport("/media", 1001)
    one = PassReport("/clips", 1002)
    one.planned.append(("upload", "a.mov"))
    out = io.StringIO()

    print_summary([quiet, one], out, dry_run=True)

    assert out.getvalue().splitlines() == [
        "/media -> Compass folder 1001: nothing to do",
        "/clips -> Compass folder 1002: would do 1 thing",
        "  upload: a.mov",
    ]


def test_a_two_way_dry_run_says_the_pull_comes_before_the_upload() -> None:
    pull = PullReport("/both", 1001)
    pull.planned.append(("download (new)", "new.mov"))
    upload = PassReport("/both", 1001)
    upload.planned.append(("upload revision", "cut.mov"))
    quiet_pull, other = PullReport("/media", 1002), PassReport("/media", 1002)
    other.planned.append(("upload", "a.mov"))
    out = io.StringIO()

    print_summary([pull, upload, quiet_pull, other], out, dry_run=True)

    assert out.getvalue().splitlines() == [
        "/both <- Compass folder 1001: would do 1 thing",
        "  download (new): new.mov",
        "/both -> Compass folder 1001: would do 1 thing",
        "  upload revision: cut.mov",
        "  (planned on the folder as it is now; in a real run the pull above comes "
        "first and can change this)",
        "/media <- Compass folder 1002: nothing to do",
        "/media -> Compass folder 1002: would do 1 thing",
        "  upload: a.mov",
    ]

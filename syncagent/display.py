"""What the commands print: a live progress bar on a terminal, and the summary."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from syncagent.engine.progress import NoProgress
from syncagent.engine.progress import Progress as ProgressEvents
from syncagent.engine.pull_report import PullReport
from syncagent.engine.report import PassReport
from syncagent.logs import ScrubbingFormatter, one_line


class _Amount(ProgressColumn):
    """Done and total: a count on the files bar, sizes on the bytes bar."""

    def __init__(self) -> None:
        super().__init__()
        self._count = MofNCompleteColumn()
        self._size = DownloadColumn()

    def render(self, task: Task) -> Text:
        column = self._size if task.description == "bytes" else self._count
        return column.render(task)


class _Rate(ProgressColumn):
    """Files per second on the files bar, a transfer rate on the bytes bar."""

    def __init__(self) -> None:
        super().__init__()
        self._speed = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        if task.description == "bytes":
            return self._speed.render(task)
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} files/s", style="green")


class BarProgress:
    """Progress events drawn as two rich bars: files and bytes."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.files = bar.add_task("files", total=0)
        self.bytes: TaskID = bar.add_task("bytes", total=0)
        self._lock = threading.Lock()

    def files_planned(self, count: int, total_bytes: int) -> None:
        """Grow the totals by what a pass plans to send."""
        with self._lock:
            task_files = self.bar.tasks[self.files]
            task_bytes = self.bar.tasks[self.bytes]
            self.bar.update(self.files, total=(task_files.total or 0) + count)
            self.bar.update(self.bytes, total=(task_bytes.total or 0) + total_bytes)

    def bytes_sent(self, count: int) -> None:
        """Advance the byte bar."""
        self.bar.advance(self.bytes, count)

    def file_done(self, rel_path: str, outcome: str) -> None:
        """Advance the file bar."""
        del rel_path, outcome
        self.bar.advance(self.files, 1)


@contextmanager
def progress_display(enabled: bool) -> Iterator[ProgressEvents]:
    """A live progress display on stderr when it is a terminal, else nothing.

    While it is shown, log lines are printed above the bars instead of through them.
    """
    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield NoProgress()
        return
    bar = Progress(
        TextColumn("[bold]{task.description:>5}"),
        BarColumn(),
        _Amount(),
        _Rate(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = RichHandler(console=console, show_path=False, markup=False)
    handler.setFormatter(ScrubbingFormatter("%(message)s"))
    root.handlers[:] = [handler]
    try:
        with bar:
            yield BarProgress(bar)
    finally:
        root.handlers[:] = saved


_UPLOAD_LABELS = (
    "uploaded",
    "adopted",
    "revised",
    "touched",
    "renamed",
    "moved",
    "removed",
    "forgotten",
    "folders_created",
    "moved_to_done",
    "deleted_after_upload",
    "awaiting_pull",
)
_PULL_LABELS = (
    "downloaded",
    "adopted",
    "updated",
    "restored",
    "renamed",
    "conflicts",
    "trashed",
    "withheld",
    "forgotten",
    "folders_created",
    "folders_moved",
    "folders_removed",
    "proxies",
    "proxies_removed",
)


_SINGULAR = {
    "conflicts": "conflict",
    "folders_created": "folder created",
    "folders_moved": "folder moved",
    "folders_removed": "folder removed",
    "proxies": "proxy",
    "proxies_removed": "proxy removed",
}


def counter_words(label: str, count: int) -> str:
    """A counter's label in words, singular when the count is one."""
    if count == 1 and label in _SINGULAR:
        return _SINGULAR[label]
    return label.replace("_", " ")


def counted(report: PassReport) -> list[str]:
    """Each counter of a pass that is not zero, in words ("3 uploaded")."""
    labels = _PULL_LABELS if isinstance(report, PullReport) else _UPLOAD_LABELS
    return [
        f"{value} {counter_words(label, value)}"
        for label in labels
        if (value := getattr(report, label))
    ]


def _describe(report: PassReport) -> str:
    parts = counted(report)
    if not parts and not report.failures and report.fatal is None:
        files = "file" if report.unchanged == 1 else "files"
        return f"nothing to do ({report.unchanged} {files} in sync)"
    if report.unchanged:
        parts.append(f"{report.unchanged} unchanged")
    done = ", ".join(parts) or "nothing done"
    if isinstance(report, PullReport):
        received = report.bytes_received / 1e6
        return f"{done}; {received:.1f} MB received in {report.seconds:.1f} s"
    sent = report.bytes_sent / 1e6
    return f"{done}; {sent:.1f} MB sent in {report.seconds:.1f} s"


def print_summary(reports: Sequence[PassReport], out: TextIO, *, dry_run: bool) -> None:
    """Print what each pass did, then every failure with its reason."""
    pulls_planned = {
        (r.local_root, r.folder_id)
        for r in reports
        if isinstance(r, PullReport) and r.planned
    }
    for report in reports:
        arrow = "<-" if isinstance(report, PullReport) else "->"
        root = one_line(report.local_root)
        head = f"{root} {arrow} Compass folder {report.folder_id}"
        if report.fatal is not None:
            print(f"{head}: not synced: {one_line(report.fatal)}", file=out)
            continue
        if dry_run:
            planned = len(report.planned)
            things = "thing" if planned == 1 else "things"
            doing = f"would do {planned} {things}" if planned else "nothing to do"
            print(f"{head}: {doing}", file=out)
            for action, path in report.planned:
                print(f"  {action}: {one_line(path)}", file=out)
            if arrow == "->" and (report.local_root, report.folder_id) in pulls_planned:
                # A real run plans the upload after the pull has changed the folder.
                print(
                    "  (planned on the folder as it is now; in a real run the pull "
                    "above comes first and can change this)",
                    file=out,
                )
            continue
        print(f"{head}: {_describe(report)}", file=out)
        if report.failures:
            print(f"  {len(report.failures)} not synced:", file=out)
            for failed in sorted(report.failures, key=lambda f: f.rel_path):
                print(
                    f"    {one_line(failed.rel_path)}: {one_line(failed.reason)}",
                    file=out,
                )
        if isinstance(report, PullReport) and report.notices:
            print(f"  {len(report.notices)} to note:", file=out)
            for noted in sorted(report.notices, key=lambda f: f.rel_path):
                print(
                    f"    {one_line(noted.rel_path)}: {one_line(noted.reason)}",
                    file=out,
                )


def print_json(
    reports: Sequence[PassReport],
    out: TextIO,
    exit_code: int,
    *,
    fatal: str | None = None,
) -> None:
    """Print the machine-readable summary; `fatal` says why a run stopped early."""
    data: dict[str, Any] = {
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "fatal": fatal,
        "mappings": [r.to_dict() for r in reports],
    }
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")

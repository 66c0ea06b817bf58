"""Event paths as a pass sees them: relative, '/'-separated, filtered like the scan."""

from __future__ import annotations

import os
from pathlib import Path

from syncagent.engine.filters import PathFilter


def relative_path(root: Path, path: str | bytes) -> str | None:
    """`path` relative to `root` with '/' separators; None for the root or outside it.

    A name that is not valid UTF-8 keeps its undecodable bytes as surrogate escapes,
    as the scan sees it: a pass must run to report it.
    """
    text = os.fsdecode(path)
    base = str(root)
    if not text.startswith(base + os.sep):
        return None
    rel_path = text[len(base) + 1 :].replace(os.sep, "/")
    return rel_path or None


def printable(rel_path: str) -> str:
    """A relative path fit for a log line, undecodable bytes shown as escapes."""
    return rel_path.encode("utf-8", "backslashreplace").decode("utf-8")


def is_watched(rules: PathFilter, rel_path: str, *, is_dir: bool) -> bool:
    """Whether the scan would take this path: no excluded folder on its way, and
    for a file, included."""
    parts = rel_path.split("/")
    for depth in range(1, len(parts)):
        if rules.excludes("/".join(parts[:depth])):
            return False
    if is_dir:
        return not rules.excludes(rel_path)
    return rules.includes_file(rel_path)

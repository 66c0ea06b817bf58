"""Which paths of a mapping take part in sync: include and exclude globs."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase


class PathFilter:
    """Include/exclude globs; a glob with no '/' matches any single path component."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)

    def excludes(self, rel_path: str) -> bool:
        """Whether a file or directory is excluded (a directory's contents with it)."""
        name = rel_path.rsplit("/", 1)[-1]
        return any(_matches(rel_path, name, pattern) for pattern in self.exclude)

    def includes_file(self, rel_path: str) -> bool:
        """Whether a file that is not excluded is wanted."""
        if self.excludes(rel_path):
            return False
        name = rel_path.rsplit("/", 1)[-1]
        return any(_matches(rel_path, name, pattern) for pattern in self.include)


def _matches(rel_path: str, name: str, pattern: str) -> bool:
    if "/" in pattern:
        return fnmatchcase(rel_path, pattern.strip("/"))
    return fnmatchcase(name, pattern)

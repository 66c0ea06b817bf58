"""Which paths of a mapping take part in sync: include and exclude globs."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from fnmatch import translate

from syncagent.config import DEFAULT_EXCLUDES, RESERVED_EXCLUDES

_CASELESS = frozenset(DEFAULT_EXCLUDES) | frozenset(RESERVED_EXCLUDES)


def _compile(
    patterns: Sequence[str], caseless: Collection[str] = ()
) -> re.Pattern[str] | None:
    if not patterns:
        return None
    parts = [
        f"(?i:{translate(p)})" if p in caseless else f"(?:{translate(p)})"
        for p in patterns
    ]
    return re.compile("|".join(parts))


class PathFilter:
    """Include/exclude globs; a glob with no '/' matches any single path component.

    The default excludes match whatever the case (`THUMBS.DB`, `~DF1A.TMP`: files from
    Windows and macOS shares); the user's own globs match case by case. Globs are
    compiled into one regular expression per kind, since a scan asks about every path
    of the tree.
    """

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._exclude_name = _compile(
            [p for p in exclude if "/" not in p], caseless=_CASELESS
        )
        self._exclude_path = _compile([p.strip("/") for p in exclude if "/" in p])
        self._include_name = _compile([p for p in include if "/" not in p])
        self._include_path = _compile([p.strip("/") for p in include if "/" in p])
        self._include_all = "*" in include

    def excludes(self, rel_path: str) -> bool:
        """Whether a file or directory is excluded (a directory's contents with it)."""
        name = rel_path.rsplit("/", 1)[-1]
        return bool(
            (self._exclude_name and self._exclude_name.match(name))
            or (self._exclude_path and self._exclude_path.match(rel_path))
        )

    def covers(self, rel_path: str) -> bool:
        """Whether a file at `rel_path` takes part in the sync: neither it nor a
        folder above it is excluded, and an include glob matches it."""
        parts = rel_path.split("/")
        for depth in range(1, len(parts) + 1):
            if self.excludes("/".join(parts[:depth])):
                return False
        return self.wanted(rel_path)

    def includes_file(self, rel_path: str) -> bool:
        """Whether a file is wanted: not excluded, and matched by an include glob."""
        if self.excludes(rel_path):
            return False
        return self.wanted(rel_path)

    def wanted(self, rel_path: str) -> bool:
        """Whether an include glob matches a file already known not to be excluded."""
        if self._include_all:
            return True
        # As with excludes, a glob names a file or a folder it takes whole: a glob
        # with no '/' any component of the path, one with '/' the path or a folder
        # above it.
        parts = rel_path.split("/")
        if self._include_name and any(self._include_name.match(p) for p in parts):
            return True
        if self._include_path:
            return any(
                self._include_path.match("/".join(parts[:depth]))
                for depth in range(1, len(parts) + 1)
            )
        return False

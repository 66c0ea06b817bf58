"""Turn untrusted remote names into safe, unique local names.

A remote asset or folder name becomes one path component that is valid on Linux, macOS
and Windows alike, so a mirror can be copied anywhere: separators, `.` and `..`,
control characters and bidirectional overrides, the characters Windows forbids,
trailing dots and spaces, device names (`CON`, `LPT1`, ...) and the agent's own
reserved names are rewritten. Names that collide once case and Unicode
normalisation are folded away get a tag naming their asset or folder, so nothing is
lost and the choice is the same on every pass.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Names the agent keeps for itself in a mapping root; temp files start with the prefix.
AGENT_PREFIX = ".syncagent-"
TRASH_DIR = ".syncagent-trash"
PROXY_DIR = ".proxies"
RESERVED = (TRASH_DIR, PROXY_DIR)

# The name limit of ext4, XFS, APFS and (in UTF-16 units, which never exceed the
# UTF-8 bytes) NTFS. A name that fits is kept whole; a tag cuts the stem to make room.
MAX_NAME_BYTES = 255
MAX_SUFFIX_CHARS = 16
PLACEHOLDER = "_"

_FORBIDDEN = re.compile(r'[<>:"|?*]')
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REPLACEMENT = "\ufffd"
"""What the client reads a NUL in a Compass name as (see compass.wire)."""
_SEPARATORS = re.compile(r"[/\\]")
_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{prefix}{n}" for prefix in ("COM", "LPT") for n in "0123456789¹²³"
}


def name_key(name: str) -> str:
    """The form two names share when a case-insensitive, normalising disk sees one."""
    return unicodedata.normalize("NFC", name.casefold())


def safe_name(remote_name: str) -> str:
    """One portable path component for a remote name (never empty, never `..`)."""
    name = unicodedata.normalize("NFC", remote_name)

    # A name is never a path: drop `.`/`..` steps and join what is left.
    parts = [p for p in _SEPARATORS.split(name) if p.strip(".")]
    name = PLACEHOLDER.join(parts)

    # Characters no disk (or only some) accepts in a name (a NUL among them, read
    # as U+FFFD), and the bidirectional overrides and isolates that make a name
    # read as another one (`x<RLO>fdp.exe` shows as `xexe.pdf`).
    name = "".join(PLACEHOLDER if _unsafe_character(ch) else ch for ch in name)
    name = _FORBIDDEN.sub(PLACEHOLDER, name)
    stripped = name.rstrip(" .")
    if stripped != name:
        name = stripped + PLACEHOLDER

    name = _not_a_device(name)
    if _is_reserved(name):
        name = PLACEHOLDER + name
    return _shortened(name) or PLACEHOLDER


def _is_reserved(name: str) -> bool:
    key = name_key(name)
    return key in {name_key(r) for r in RESERVED} or key.startswith(AGENT_PREFIX)


def split_suffix(name: str) -> tuple[str, str]:
    """A name's stem and extension (`.jpg`), when the extension looks like one."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > MAX_SUFFIX_CHARS or " " in suffix:
        return name, ""
    return stem, f".{suffix}"


def tagged(name: str, tag: str, *, is_dir: bool = False) -> str:
    """`photo.jpg` tagged `asset 7` is `photo (asset 7).jpg`; folders keep no suffix."""
    stem, suffix = (name, "") if is_dir else split_suffix(name)
    tail = f" ({tag}){suffix}"
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    if len(stem.encode("utf-8")) > room:
        stem = _cut(stem, room)
    return stem + tail


def is_tagged(name: str, base: str, tag: str, *, is_dir: bool = False) -> bool:
    """Whether `name` is `base` tagged with `tag`, numbered or not: `photo.jpg` with
    `asset 7` gives `photo (asset 7).jpg`, `photo (asset 7 2).jpg`, ..."""
    _, suffix = (base, "") if is_dir else split_suffix(base)
    head, tail = f" ({tag}", f"){suffix}"
    if not name.endswith(tail):
        return False
    inner = name[: len(name) - len(tail)]
    start = inner.rfind(head)
    if start < 0:
        return False
    number = inner[start + len(head) :]
    if not (number == "" or (number[:1] == " " and number[1:].isdigit())):
        return False
    # The stem may have been cut to make room for the tag: compare whole names.
    return tagged(base, tag + number, is_dir=is_dir) == name


_ASSET_TAG = re.compile(r" \(asset ([0-9]+)(?: [0-9]+)?\)")


def tagged_asset_id(name: str) -> int | None:
    """The asset ID a name is tagged with (`photo (asset 7).jpg` → 7), if any."""
    stem, _ = split_suffix(name)
    found = _ASSET_TAG.search(stem)
    if found is None or found.end() != len(stem):
        return None
    return int(found.group(1))


def _not_a_device(name: str) -> str:
    stem, _, rest = name.partition(".")
    if stem.rstrip(" ").upper() in _DEVICES:
        return f"{stem}{PLACEHOLDER}" + (f".{rest}" if rest else "")
    return name


def _shortened(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, suffix = split_suffix(name)
    return _cut(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix


def _cut(stem: str, room: int) -> str:
    """The longest start of `stem` that fits `room` bytes (whole characters), with
    no trailing space or dot."""
    return stem.encode("utf-8")[: max(room, 0)].decode("utf-8", "ignore").rstrip(" .")


@dataclass
class NameSpace:
    """The names in one local directory, by folded key, as a pass hands them out."""

    owners: dict[str, str] = field(default_factory=dict)

    def hold(self, name: str, owner: str) -> None:
        """Mark a name as used by `owner` ('file', 'dir', 'other' or 'claimed')."""
        self.owners.setdefault(name_key(name), owner)

    def owner(self, name: str) -> str | None:
        """Who uses a name (folded), or None if it is free."""
        return self.owners.get(name_key(name))

    def claim(self, name: str, tag: str, *, is_dir: bool = False) -> str:
        """Hand out `name`, or `name` tagged with `tag` (then numbered) if taken.

        A directory may take the name of an unknown local directory: it merges.
        """
        candidates = [name, tagged(name, tag, is_dir=is_dir)]
        candidates += [tagged(name, f"{tag} {n}", is_dir=is_dir) for n in range(2, 100)]
        for candidate in candidates:
            found = self.owner(candidate)
            if found is None or (is_dir and found == "dir"):
                self.owners[name_key(candidate)] = "claimed"
                return candidate
        raise ValueError(f"no free name for {name!r} ({tag})")


def _unsafe_character(ch: str) -> bool:
    return (
        unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS or ch == _REPLACEMENT
    )

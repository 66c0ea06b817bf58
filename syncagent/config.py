"""Load and check `agent.toml`: the Compass account, the ledger, transfers, mappings.

Every problem is reported as a ConfigError naming the file and the key, so a user can
fix it without reading code. Relative paths are relative to the config file.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from syncagent.engine.layout import PROXY_TYPES

CONFIG_ENV = "SYNCAGENT_CONFIG"
DEFAULT_CONFIG = "agent.toml"
EMBEDDED = "embedded"
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024

# Skipped in every mapping unless `default_excludes = false`: hidden files, and the temp
# files of editors, browsers, office suites and copy tools, which are never finished.
# The conflict copies a two-way pull saves beside a file changed on both sides:
# `<name> (conflict <UTC date> asset <id>).<ext>`. Only two-way mappings make them.
CONFLICT_COPY_EXCLUDE = (
    "* (conflict [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] asset [0-9]*)*"
)

DEFAULT_EXCLUDES = (
    ".*",
    "*~",
    "~$*",
    "*.tmp",
    "*.temp",
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.download",
    "*.swp",
    "*.swo",
    "*.swx",
    "*.lock",
    "#*#",
    ".~lock.*#",
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    "Icon\r",
    "__MACOSX",
    "*.error.txt",
)
# Never synced up, even with `default_excludes = false`: the trash, proxies and temp
# files a pull keeps in a mirror.
RESERVED_EXCLUDES = (".syncagent-trash", ".proxies", ".syncagent-*")

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class CompassConfig:
    """Where Compass is and who the agent logs in as."""

    url: str
    username: str
    password: str = field(repr=False)
    verify_tls: bool | str = True
    timeout: float = 60.0

    @property
    def embedded(self) -> bool:
        """Whether the bundled emulator stands in for Compass."""
        return self.url == EMBEDDED


@dataclass(frozen=True)
class TransferConfig:
    """How uploads and downloads are cut up and how many run at once."""

    part_size: int = 8 * 1024 * 1024
    concurrency: int = 4
    memory_limit: int = 32 * 1024 * 1024
    ingest_wait: float = 60.0
    """How long an upload waits for Compass to show its file once completed; past
    that, the next pass verifies it."""


@dataclass(frozen=True)
class AgentConfig:
    """Timings of the background agent."""

    settle_seconds: float = 5.0
    rescan_interval: float = 3600.0
    pull_interval: float = 300.0
    shutdown_timeout: float = 30.0


@dataclass(frozen=True)
class MappingConfig:
    """One local folder bound to one Compass folder."""

    local_root: Path
    folder_id: int
    direction: str = "upload"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    mode: str = "sync"
    after_ingest: str = "keep"
    remove_emptied_folders: bool = False
    watch: str = "native"
    proxies: tuple[str, ...] = ()
    proxies_only: bool = False
    on_remote_delete: str = "trash"
    on_local_delete: str = "keep"
    restore_archived: bool = False

    @property
    def uploads(self) -> bool:
        """Whether local changes go up to Compass."""
        return self.direction in ("upload", "both")

    @property
    def downloads(self) -> bool:
        """Whether remote changes come down from Compass."""
        return self.direction in ("download", "both")


@dataclass(frozen=True)
class Config:
    """The whole agent configuration."""

    path: Path
    compass: CompassConfig
    ledger_url: str
    transfer: TransferConfig
    agent: AgentConfig
    mappings: tuple[MappingConfig, ...]
    embedded_data: Path
    # Settings that work but are likely not what was meant, each naming its key; the
    # commands that act on them log them at start.
    warnings: tuple[str, ...] = ()


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    """The config file to use: --config, then $SYNCAGENT_CONFIG, then ./agent.toml."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(chosen).expanduser()
    if not path.is_file():
        source = (
            "--config" if explicit else CONFIG_ENV if os.environ.get(CONFIG_ENV) else ""
        )
        hint = f" (from {source})" if source else ""
        raise ConfigError(f"{path}{hint}: no such configuration file")
    return path.resolve()


def load_config(path: Path, *, need_password: bool = True) -> Config:
    """Read and check a config file. Without `need_password` (for commands that never
    log in, such as status) a password_env that is not set is no error."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return _Reader(path, need_password=need_password).config(raw)


_SQLITE_URL = re.compile(r"sqlite(?:\+\w+)?:///(?P<path>[^?]*)")
"""A SQLite URL with a file, whatever its driver (`sqlite+pysqlite:///...`)."""


def sqlite_file(ledger_url: str) -> Path | None:
    """The file of a SQLite ledger URL (`sqlite:///path`); None for other databases
    and in-memory ones."""
    found = _SQLITE_URL.match(ledger_url)
    if found is None or found["path"] in ("", ":memory:"):
        return None
    return Path(found["path"])


def parse_size(value: Any, key: str) -> int:
    """Read a byte size: an integer, or a string like "8MiB" or "5 MB"."""
    if isinstance(value, bool):
        raise ConfigError(f'{key}: expected a size like "8MiB", got {value!r}')
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _SIZE_UNITS:
        raise ConfigError(f'{key}: expected a size like "8MiB", got {value!r}')
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: Any, key: str) -> float:
    """Read a duration: seconds as a number, or a string like "30s", "5m", "1h"."""
    if isinstance(value, bool):
        raise ConfigError(f'{key}: expected a duration like "5m", got {value!r}')
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _DURATION_UNITS:
        raise ConfigError(f'{key}: expected a duration like "5m", got {value!r}')
    return float(match.group(1)) * _DURATION_UNITS[unit]


class _Reader:
    """Reads one parsed TOML document, naming `file: key` in every error."""

    def __init__(self, path: Path, *, need_password: bool = True) -> None:
        self.path = path
        self.base = path.parent
        self.need_password = need_password
        self.warnings: list[str] = []

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def table(self, raw: dict[str, Any], key: str, known: set[str]) -> dict[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table")
        unknown = sorted(set(value) - known)
        if unknown:
            raise self.fail(
                f"{key}.{unknown[0]}", f"unknown key; known: {sorted(known)}"
            )
        return value

    def get(
        self, table: dict[str, Any], key: str, name: str, kind: type, default: Any
    ) -> Any:
        value = table.get(name, default)
        if value is default and default is not _REQUIRED:
            return value
        if value is _REQUIRED:
            raise self.fail(key, "missing")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"expected {kind.__name__}, got {value!r}")
        return value

    def choice(
        self, table: dict[str, Any], key: str, name: str, options: tuple[str, ...]
    ) -> str:
        value = self.get(table, key, name, str, options[0])
        if value not in options:
            raise self.fail(key, f"expected one of {', '.join(options)}; got {value!r}")
        return str(value)

    def size(self, value: Any, key: str) -> int:
        try:
            return parse_size(value, key)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None

    def duration(self, value: Any, key: str, minimum: float) -> float:
        try:
            seconds = parse_duration(value, key)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        if seconds < minimum:
            raise self.fail(key, f"must be at least {_seconds(minimum)}")
        return seconds

    def path_of(self, value: str) -> Path:
        return (self.base / Path(value).expanduser()).resolve()

    def config(self, raw: dict[str, Any]) -> Config:
        unknown = sorted(set(raw) - _TOP_LEVEL)
        if unknown:
            raise self.fail(unknown[0], f"unknown section; known: {sorted(_TOP_LEVEL)}")
        mappings = raw.get("mapping", [])
        if not isinstance(mappings, list) or not mappings:
            raise self.fail(
                "mapping", "add at least one [[mapping]] with local and folder_id"
            )
        embedded = self.table(raw, "embedded", {"data"})
        data_dir = self.get(
            embedded, "embedded.data", "data", str, ".syncagent/emulator"
        )
        if self.path_of(data_dir).exists() and not self.path_of(data_dir).is_dir():
            raise self.fail(
                "embedded.data", f"{self.path_of(data_dir)} is not a folder"
            )
        parsed = tuple(self.mapping(m, i) for i, m in enumerate(mappings, start=1))
        self.check_overlaps(parsed)
        ledger_url = self.ledger(raw)
        own = self.own_files(ledger_url, self.path_of(data_dir))
        return Config(
            path=self.path,
            compass=self.compass(raw),
            ledger_url=ledger_url,
            transfer=self.transfer(raw),
            agent=self.agent(raw),
            mappings=tuple(_without(m, own) for m in parsed),
            embedded_data=self.path_of(data_dir),
            warnings=tuple(self.warnings),
        )

    def own_files(self, ledger_url: str, embedded_data: Path) -> list[Path]:
        """The agent's own files, which no mapping may sync whatever its globs."""
        own = [self.path.resolve(), embedded_data, *_output_files()]
        ledger = sqlite_file(ledger_url)
        if ledger is not None:
            own += [ledger.with_name(ledger.name + s) for s in _SQLITE_SUFFIXES]
        return own

    def compass(self, raw: dict[str, Any]) -> CompassConfig:
        known = {"url", "username", "password", "password_env", "verify_tls", "timeout"}
        table = self.table(raw, "compass", known)
        url = self.get(table, "compass.url", "url", str, _REQUIRED).rstrip("/")
        if url != EMBEDDED and not re.match(r"https?://[^/]+", url):
            raise self.fail(
                "compass.url", f'expected "embedded" or an http(s) URL, got {url!r}'
            )
        if "@" in urlsplit(url).netloc:
            # Said without the URL: it holds a password, and this goes to the logs.
            raise self.fail(
                "compass.url",
                "holds a user name or password (user:password@host); put them in "
                "compass.username and compass.password (or password_env) instead",
            )
        username = self.get(table, "compass.username", "username", str, _REQUIRED)
        if not username.strip():
            raise self.fail("compass.username", "must not be empty")
        verify = table.get("verify_tls", True)
        if not isinstance(verify, bool | str):
            raise self.fail(
                "compass.verify_tls", "expected true, false or a CA bundle path"
            )
        if isinstance(verify, str):
            bundle = self.path_of(verify)
            if not bundle.is_file():
                raise self.fail("compass.verify_tls", f"no CA bundle file at {bundle}")
            verify = str(bundle)
        timeout = self.get(table, "compass.timeout", "timeout", float, 60.0)
        if not 0 < timeout <= 3600:
            raise self.fail(
                "compass.timeout", "must be more than 0 and at most 3600 seconds"
            )
        return CompassConfig(url, username, self.password(table), verify, timeout)

    def password(self, table: dict[str, Any]) -> str:
        if "password" in table and "password_env" in table:
            raise self.fail(
                "compass.password", "set password or password_env, not both"
            )
        if "password_env" in table:
            name = self.get(
                table, "compass.password_env", "password_env", str, _REQUIRED
            )
            value = os.environ.get(name)
            if value is None and not self.need_password:
                return ""
            if value is None:
                raise self.fail(
                    "compass.password_env", f"environment variable {name} is not set"
                )
            return value
        return str(self.get(table, "compass.password", "password", str, _REQUIRED))

    def ledger(self, raw: dict[str, Any]) -> str:
        table = self.table(raw, "ledger", {"url"})
        url = str(
            self.get(table, "ledger.url", "url", str, "sqlite:///.syncagent/ledger.db")
        )
        if not re.match(r"[A-Za-z][A-Za-z0-9+]*://", url):
            raise self.fail(
                "ledger.url",
                f"expected a database URL like sqlite:///path/ledger.db, got {url!r}",
            )
        found = _SQLITE_URL.match(url)
        if found is None or found["path"].startswith("/"):
            return url
        if found["path"] in ("", ":memory:"):
            return url
        start, end = found.span("path")
        return url[:start] + str(self.path_of(found["path"])) + url[end:]

    def transfer(self, raw: dict[str, Any]) -> TransferConfig:
        table = self.table(
            raw,
            "transfer",
            {"part_size", "concurrency", "memory_limit", "ingest_wait"},
        )
        part_size = self.size(table.get("part_size", "8MiB"), "transfer.part_size")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise self.fail(
                "transfer.part_size",
                "must be between 5MiB (5242880 bytes) and 5GiB, the limits of a part",
            )
        concurrency = self.get(table, "transfer.concurrency", "concurrency", int, 4)
        if not 1 <= concurrency <= 64:
            raise self.fail("transfer.concurrency", "must be between 1 and 64")
        memory = self.size(table.get("memory_limit", "32MiB"), "transfer.memory_limit")
        wait = self.duration(table.get("ingest_wait", 60), "transfer.ingest_wait", 1)
        return TransferConfig(part_size, concurrency, memory, wait)

    def agent(self, raw: dict[str, Any]) -> AgentConfig:
        known = {
            "settle_seconds",
            "rescan_interval",
            "pull_interval",
            "shutdown_timeout",
        }
        table = self.table(raw, "agent", known)
        values = {
            name: self.duration(table[name], f"agent.{name}", _AGENT_MINIMUMS[name])
            for name in known
            if name in table
        }
        if values.get("settle_seconds") == 0:
            # Allowed: files that only ever arrive whole (renamed into place) need
            # no wait. For files copied in, it is almost never what was meant.
            self.warnings.append(
                f"{self.path}: agent.settle_seconds: 0 means a file is uploaded as "
                "soon as it is seen, so one still being written can go up half-way "
                "(and a drop box then moves or deletes it); set 1 or more unless "
                "files only arrive whole, renamed into place"
            )
        return AgentConfig(**values)

    def mapping(self, raw: Any, index: int) -> MappingConfig:
        key = f"mapping[{index}]"
        if not isinstance(raw, dict):
            raise self.fail(key, "expected a table")
        unknown = sorted(set(raw) - _MAPPING_KEYS)
        if unknown:
            raise self.fail(
                f"{key}.{unknown[0]}", f"unknown key; known: {sorted(_MAPPING_KEYS)}"
            )
        local = self.get(raw, f"{key}.local", "local", str, _REQUIRED)
        folder_id = self.get(raw, f"{key}.folder_id", "folder_id", int, _REQUIRED)
        if folder_id <= 0:
            raise self.fail(f"{key}.folder_id", "must be a positive Compass folder ID")
        excludes = self.globs(raw, f"{key}.exclude", "exclude", [])
        if raw.get("default_excludes", True):
            excludes = list(DEFAULT_EXCLUDES) + excludes
        else:
            excludes = list(RESERVED_EXCLUDES) + excludes
        direction = self.choice(raw, f"{key}.direction", "direction", _DIRECTIONS)
        if direction == "both":
            excludes.append(CONFLICT_COPY_EXCLUDE)
        mode = self.choice(raw, f"{key}.mode", "mode", ("sync", "dropbox"))
        if mode == "dropbox" and direction != "upload":
            # A drop box moves or deletes what it ingests: pulling into it would
            # fetch the folder again after every move, for ever.
            raise self.fail(
                f"{key}.mode",
                f'a drop box only uploads; direction = "{direction}" cannot be used '
                "with it (map another local folder to download)",
            )
        self.check_direction_keys(raw, key, direction)
        return MappingConfig(
            local_root=self.path_of(local),
            folder_id=folder_id,
            direction=direction,
            include=tuple(self.globs(raw, f"{key}.include", "include", ["*"])),
            exclude=tuple(excludes),
            mode=mode,
            after_ingest=self.after_ingest(raw, key, mode),
            remove_emptied_folders=self.remove_emptied(raw, key),
            watch=self.choice(raw, f"{key}.watch", "watch", ("native", "poll")),
            proxies=self.proxy_types(raw, key),
            proxies_only=self.proxies_only(raw, key, direction),
            on_remote_delete=self.choice(
                raw, f"{key}.on_remote_delete", "on_remote_delete", ("trash", "keep")
            ),
            on_local_delete=self.choice(
                raw, f"{key}.on_local_delete", "on_local_delete", ("keep", "remove")
            ),
            restore_archived=self.get(
                raw, f"{key}.restore_archived", "restore_archived", bool, False
            ),
        )

    def check_direction_keys(
        self, raw: dict[str, Any], key: str, direction: str
    ) -> None:
        """Refuse keys that do nothing in this direction: whoever set one expects
        it to act."""
        if direction == "upload":
            present = [name for name in _PULL_KEYS if name in raw]
            wanted, other = "download", "upload"
        elif direction == "download":
            present = [name for name in _UPLOAD_KEYS if name in raw]
            wanted, other = "upload", "download"
        else:
            return
        if present:
            raise self.fail(
                f"{key}.{present[0]}",
                f"only a mapping that {wanted}s uses it; this one has direction = "
                f'"{other}" (set direction = "{wanted}" or "both", or remove the key)',
            )

    def proxy_types(self, raw: dict[str, Any], key: str) -> tuple[str, ...]:
        types = self.globs(raw, f"{key}.proxies", "proxies", [])
        for name in types:
            if name not in PROXY_TYPES:
                raise self.fail(
                    f"{key}.proxies",
                    f"unknown proxy type {name!r}; Compass has "
                    f"{', '.join(sorted(PROXY_TYPES))}",
                )
        return tuple(types)

    def proxies_only(self, raw: dict[str, Any], key: str, direction: str) -> bool:
        only = self.get(raw, f"{key}.proxies_only", "proxies_only", bool, False)
        if only and direction == "both":
            # The pull would write proxies only, and the upload side would send up
            # whatever sits beside them.
            raise self.fail(
                f"{key}.proxies_only",
                "a mirror of proxies only cannot be two-way; use direction = "
                '"download", or remove the key',
            )
        if only and not raw.get("proxies"):
            raise self.fail(
                f"{key}.proxies_only",
                "with no proxy types listed in proxies, nothing would be mirrored",
            )
        return bool(only)

    def after_ingest(self, raw: dict[str, Any], key: str, mode: str) -> str:
        after = self.choice(raw, f"{key}.after_ingest", "after_ingest", _AFTER)
        if mode == "sync" and after != "keep":
            # Refused, not ignored: whoever set it expects files to leave the folder.
            raise self.fail(
                f"{key}.after_ingest",
                "only a drop box moves or deletes what it uploads; add "
                f'mode = "dropbox" to have after_ingest = "{after}", or remove the key',
            )
        return after

    def remove_emptied(self, raw: dict[str, Any], key: str) -> bool:
        name = "remove_emptied_folders"
        remove = self.get(raw, f"{key}.{name}", name, bool, False)
        if remove and raw.get("after_ingest", "keep") == "keep":
            # Refused, not ignored: whoever set it expects folders to go.
            raise self.fail(
                f"{key}.{name}",
                'only a drop box whose files leave (after_ingest = "move" or '
                '"delete") empties folders; set one, or remove the key',
            )
        return remove

    def globs(
        self, raw: dict[str, Any], key: str, name: str, default: list[str]
    ) -> list[str]:
        value = raw.get(name, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return list(value)

    def check_overlaps(self, mappings: tuple[MappingConfig, ...]) -> None:
        roots = [m.local_root for m in mappings]
        for i, root in enumerate(roots):
            for j, other in enumerate(roots):
                if i != j and (root == other or root.is_relative_to(other)):
                    raise self.fail(
                        f"mapping[{i + 1}].local",
                        f"{root} overlaps mapping[{j + 1}] ({other}); "
                        "mapping roots must not nest",
                    )


def _without(mapping: MappingConfig, own: list[Path]) -> MappingConfig:
    """The mapping, with the agent's own files under its root excluded by path."""
    inside = [
        p
        for p in own
        if p != mapping.local_root and p.is_relative_to(mapping.local_root)
    ]
    if not inside:
        return mapping
    anchored = [
        f"/{glob.escape(p.relative_to(mapping.local_root).as_posix())}" for p in inside
    ]
    return replace(mapping, exclude=(*mapping.exclude, *anchored))


def _seconds(amount: float) -> str:
    """`1 second`, `0 seconds`, `2.5 seconds`."""
    return f"{amount:g} second" + ("" if amount == 1 else "s")


def _output_files() -> list[Path]:
    """The regular files this process writes its output to (`sync >> sync.log`).

    Found through /proc, so on Linux only; elsewhere such a log must be excluded by
    hand.
    """
    found = []
    for fd in (1, 2):
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                found.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            continue
    return found


# The ledger file and the files SQLite keeps beside it.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")

_REQUIRED: Any = object()
# Below these, a typo would make the agent hammer Compass or spin on the disk.
_AGENT_MINIMUMS = {
    "settle_seconds": 0.0,
    "rescan_interval": 1.0,
    "pull_interval": 1.0,
    "shutdown_timeout": 0.0,
}
_TOP_LEVEL = {"compass", "ledger", "transfer", "agent", "mapping", "embedded"}
_DIRECTIONS = ("upload", "download", "both")
_AFTER = ("keep", "delete", "move")
_PULL_KEYS = ("proxies", "proxies_only", "on_remote_delete", "restore_archived")
_UPLOAD_KEYS = ("on_local_delete",)
_MAPPING_KEYS = {
    "local",
    "folder_id",
    "direction",
    "include",
    "exclude",
    "default_excludes",
    "mode",
    "after_ingest",
    "remove_emptied_folders",
    "watch",
    "proxies",
    "proxies_only",
    "on_remote_delete",
    "on_local_delete",
    "restore_archived",
}

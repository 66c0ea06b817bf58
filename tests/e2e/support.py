"""Helpers for end-to-end tests: configs, the agent as a subprocess, and a plain
httpx view of what Compass holds (independent of the agent's own client)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SYNCAGENT = [sys.executable, "-m", "syncagent"]


def write_config(
    directory: Path,
    url: str,
    mappings: list[dict[str, Any]],
    *,
    part_size: str = "5MiB",
    concurrency: int = 4,
    extra: str = "",
    username: str = "demo",
    password: str = "demo",
    ingest_wait: str | None = None,
    ledger: str = "sqlite:///state/ledger.db",
) -> Path:
    """Write an agent.toml for the given Compass URL and mappings."""
    lines = [
        "[compass]",
        f'url = "{url}"',
        f'username = "{username}"',
        f'password = "{password}"',
        "timeout = 20",
        "[ledger]",
        f'url = "{ledger}"',
        "[transfer]",
        f'part_size = "{part_size}"',
        f"concurrency = {concurrency}",
    ]
    if ingest_wait is not None:
        lines.append(f'ingest_wait = "{ingest_wait}"')
    for mapping in mappings:
        lines.append("[[mapping]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in mapping.items())
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def unprivileged_prefix() -> list[str]:
    """A command prefix that makes root obey file permissions, so that a chmod 000
    file is unreadable to the agent as it would be to a normal user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("tests run as root need setpriv (util-linux)")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@dataclass
class SyncRun:
    """A finished `syncagent sync --json`."""

    returncode: int
    summary: dict[str, Any]
    stderr: str

    @property
    def mapping(self) -> dict[str, Any]:
        return self.summary["mappings"][0]

    def failures(self) -> dict[str, str]:
        return {f["rel_path"]: f["reason"] for f in self.mapping["failures"]}


def run_sync(
    config: Path,
    *,
    timeout: float = 120,
    unprivileged: bool = False,
    verbose: bool = False,
    dry_run: bool = False,
    env: dict[str, str] | None = None,
    file_size_limit: int | None = None,
) -> SyncRun:
    """Run `syncagent sync --json` and parse its summary (`env`: its environment,
    if not this process's; `file_size_limit`: the bytes it may write into any one
    file, as on a disk that is full)."""
    command = [*SYNCAGENT, "sync", "--config", str(config), "--json"]
    if verbose:
        command.append("-v")
    if dry_run:
        command.append("--dry-run")
    if unprivileged:
        command = unprivileged_prefix() + command
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        preexec_fn=None if file_size_limit is None else _limit_files(file_size_limit),
    )
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"sync printed no JSON (exit {done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}"
        ) from exc
    return SyncRun(done.returncode, summary, done.stderr)


def _limit_files(size: int) -> Callable[[], None]:
    def limit() -> None:
        # A write past the limit then fails with EFBIG instead of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def local_files(root: Path) -> dict[str, Path]:
    """Every regular file under root by '/'-joined relative path."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path
    return found


class RemoteView:
    """What Compass holds, read with plain httpx calls of the reference."""

    def __init__(self, base_url: str, username: str = "demo", password: str = "demo"):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        answer = self.http.post(
            "/api/v1/authenticate", json={"username": username, "password": password}
        )
        answer.raise_for_status()
        self.http.headers["authorization"] = f"Bearer {answer.json()['access_token']}"

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: Any) -> Any:
        answer = self.http.post(path, json=body)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def subfolders(self, folder_id: int) -> dict[str, int]:
        listing = self.get(f"/api/v1/folders/{folder_id}/subfolders")
        return {f["name"]: f["id"] for f in listing["folders"]}

    def folder_assets(self, folder_id: int) -> list[dict[str, Any]]:
        """Details of every asset directly in a folder."""
        ids: list[int] = []
        page = 1
        while True:
            result = self.get(
                "/api/v1/search",
                query="*",
                filters=f"folder_id:{folder_id}",
                page=page,
                per_page_index=1,
            )
            ids.extend(item["id"] for item in result["asset_items"])
            if result["last_page"] or not result["asset_items"]:
                break
            page += 1
        details: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            batch = self.post(
                "/api/v1/asset_items/batch", {"ids": ids[start : start + 500]}
            )
            details.extend(batch["asset_items"])
        return details

    def tree(self, folder_id: int, prefix: str = "") -> dict[str, list[dict[str, Any]]]:
        """Assets under a folder, recursively, by '/'-joined path (a list per path, so
        duplicates show)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for asset in self.folder_assets(folder_id):
            found.setdefault(prefix + asset["name"], []).append(asset)
        for name, child in self.subfolders(folder_id).items():
            found.update(self.tree(child, f"{prefix}{name}/"))
        return found

    def stats(self) -> dict[str, Any]:
        return self.get("/_emulator/stats")

    def set_faults(self, spec: str) -> None:
        answer = self.http.put("/_emulator/faults", json={"spec": spec})
        answer.raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_emulator/faults").raise_for_status()


def assert_mirrored(root: Path, view: RemoteView, folder_id: int) -> dict[str, Any]:
    """Every local file is in Compass once, complete, with equal size and MD5."""
    remote = view.tree(folder_id)
    local = local_files(root)
    duplicates = {
        path: len(assets) for path, assets in remote.items() if len(assets) > 1
    }
    assert duplicates == {}, f"duplicate assets: {duplicates}"
    assert sorted(remote) == sorted(local)
    for rel_path, path in local.items():
        [asset] = remote[rel_path]
        assert asset["status"] == "complete", rel_path
        assert asset["size"] == path.stat().st_size, rel_path
        assert asset["checksum"] == md5_file(path), rel_path
    return {path: assets[0] for path, assets in remote.items()}

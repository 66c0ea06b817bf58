"""Many small files: syncagent against a minimal httpx peer making the same calls.

Both upload the same 2,000 files of 64 KiB (by default) to the same emulator, running
in its own process, with the same concurrency; runs alternate which goes first and
the medians are compared. The peer is the ceiling for this emulator: the documented
calls, batched the same way (50 creates per call), threads, and no ledger, scan or
retry logic. Both are commands timed from their start to their exit (the peer is this
script with `--peer`), and the CPU each used is printed per file.

    python3 dev.py bench small_files [--files N] [--size BYTES] [--runs R]

Measured (December 2026, 2-core machine, medians of 5 runs): syncagent reaches
0.84-0.89 of the peer (target 0.8), about 211-238 against 251-269 files/s, with
about 3.0-3.4 ms of agent CPU per file against the peer's 2.7-3.0 (the emulator
serves both at 3.2-3.6). What the agent does beyond the peer, and how it stays
cheap: the scan and plan; one ledger row per file before its asset is created; a
one-part upload records no step between (a stopped run's completed asset is found
again by its status); the record of each verified file is committed in batches on
the ledger's own thread while the worker goes on; and the start of the command
(imports, ledger, login: about 0.5 s). Before those changes the agent spent 4.5 ms
per file and reached 0.67.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import (
    PYTHON,
    cpu_seconds,
    emulator_process,
    login,
    make_folder,
    median,
    timed,
    write_agent_config,
)

CREATE_BATCH = 50


def make_files(root: Path, count: int, size: int) -> list[Path]:
    root.mkdir(parents=True)
    paths = []
    block = bytes(range(256)) * (size // 256 + 1)
    for index in range(count):
        path = root / f"file_{index:05d}.bin"
        path.write_bytes(index.to_bytes(4, "big") + block[: size - 4])
        paths.append(path)
    return paths


def peer_upload(url: str, folder_id: int, root: Path, concurrency: int) -> None:
    """Upload every file of `root` with plain httpx: create in batches, then each
    file's multipart flow. Run as its own command (`--peer`), like the agent."""
    paths = sorted(root.iterdir())
    limits = httpx.Limits(max_connections=concurrency + 4)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as client:
        login(client)

        def one(asset_id: int, path: Path) -> None:
            data = path.read_bytes()
            md5 = hashlib.md5(data).hexdigest()
            base = f"/api/v2/multipart/asset_items/{asset_id}"
            client.post(
                f"{base}/initiate", json={"part_size": 5242880}
            ).raise_for_status()
            urls = client.post(
                f"{base}/retrieve_upload_urls", json={"part_numbers": [1]}
            )
            part_url = urls.json()["retrieve_upload_urls"][0]["upload_url"]
            # Presigned: S3 refuses a second auth mechanism, so no bearer token.
            request = client.build_request("PUT", part_url, content=data)
            del request.headers["authorization"]
            put = client.send(request)
            assert put.headers["etag"].strip('"') == md5
            client.post(
                f"{base}/complete_parts",
                json={"parts": [{"part_number": 1, "checksum": md5}]},
            ).raise_for_status()
            client.post(f"{base}/complete", json={}).raise_for_status()
            asset = client.get(f"/api/v1/asset_items/{asset_id}").json()
            assert asset["checksum"] == md5

        with ThreadPoolExecutor(concurrency) as pool:
            futures = []
            for start in range(0, len(paths), CREATE_BATCH):
                batch = paths[start : start + CREATE_BATCH]
                items = [
                    {
                        "name": p.name,
                        "folder_ids": [folder_id],
                        "file_size": p.stat().st_size,
                    }
                    for p in batch
                ]
                created = client.post(
                    "/api/v2/uploads/http", json={"asset_items": items}
                )
                created.raise_for_status()
                for asset, path in zip(
                    created.json()["asset_items"], batch, strict=True
                ):
                    futures.append(pool.submit(one, asset["id"], path))
            for future in futures:
                future.result()


def peer_command(url: str, folder_id: int, root: Path, concurrency: int) -> list[str]:
    return [
        PYTHON,
        __file__,
        "--peer",
        url,
        str(folder_id),
        str(root),
        str(concurrency),
    ]


def agent_command(url: str, folder_id: int, root: Path, concurrency: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    config = write_agent_config(work, url, root, folder_id, concurrency=concurrency)
    return [PYTHON, "-m", "syncagent", "sync", "--config", str(config), "--json"]


def main() -> None:
    if sys.argv[1:2] == ["--peer"]:
        url, folder_id, root, concurrency = sys.argv[2:6]
        peer_upload(url, int(folder_id), Path(root), int(concurrency))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    peer_times, agent_times = [], []
    cpu: dict[str, list[float]] = {
        "peer": [],
        "agent": [],
        "emulator for the peer": [],
        "emulator for syncagent": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench-files-") as tmp,
        emulator_process() as (url, emulator_pid),
    ):
        for run in range(args.runs):
            root = Path(tmp) / f"run{run}"
            make_files(root, args.files, args.size)
            sides = [
                ("peer", peer_command, peer_times),
                ("agent", agent_command, agent_times),
            ]
            # Each goes first in every other run: neither always finds the
            # emulator's database the fuller.
            for name, command, times in sides[:: 1 if run % 2 == 0 else -1]:
                folder = make_folder(url, f"{name}-{run}")
                served = "the peer" if name == "peer" else "syncagent"
                before = cpu_seconds(emulator_pid)
                seconds, _rss, used = timed(
                    command(url, folder, root, args.concurrency)
                )
                cpu[f"emulator for {served}"].append(cpu_seconds(emulator_pid) - before)
                times.append(seconds)
                cpu[name].append(used)
            print(
                f"run {run + 1}: peer {args.files / peer_times[-1]:.0f} files/s, "
                f"syncagent {args.files / agent_times[-1]:.0f} files/s"
            )

    peer, agent = median(peer_times), median(agent_times)
    print(f"files: {args.files} x {args.size} bytes, concurrency {args.concurrency}")
    print(
        f"peer (plain httpx, same calls): {args.files / peer:.0f} files/s "
        f"(median of {args.runs})"
    )
    print(f"syncagent sync (whole command): {args.files / agent:.0f} files/s (median)")
    print(f"ratio syncagent / peer: {peer / agent:.2f}  (target >= 0.80)")
    print(
        "CPU per file (ms, medians): "
        + ", ".join(
            f"{name} {median(values) / args.files * 1000:.2f}"
            for name, values in cpu.items()
        )
    )


if __name__ == "__main__":
    main()

"""Latency of the agent: a small file closed in a watched folder -> its asset complete.

Starts the emulator in its own process and `syncagent run` as a subprocess, then
drops small files into the watched folder one at a time, `--interval` seconds apart.
A poller asks Compass (search + batch details, every `--poll` seconds) when each asset
turns complete. Prints the median and p95 beside `settle_seconds`: a file must hold
still that long before it goes, so latency is settle_seconds plus the agent's own work.

    python3 dev.py bench latency [--files 100] [--settle 1.0] [--interval 0.25]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import PYTHON, emulator_process, login, make_folder

SEARCH_PAGE = 100


def write_config(
    directory: Path, url: str, root: Path, folder_id: int, settle: float
) -> Path:
    lines = [
        "[compass]",
        f'url = "{url}"',
        'username = "demo"',
        'password = "demo"',
        "[ledger]",
        f'url = "sqlite:///{directory}/ledger.db"',
        "[agent]",
        f"settle_seconds = {settle}",
        "[[mapping]]",
        f'local = "{root}"',
        f"folder_id = {folder_id}",
    ]
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class CompletionPoller:
    """Records when each asset of a folder is first seen complete, by name."""

    def __init__(self, url: str, folder_id: int, period: float) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        login(self.client)
        self.folder_id = folder_id
        self.period = period
        self.complete_at: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            self._look()

    def _look(self) -> None:
        pending: list[int] = []
        page = 1
        while True:
            answer = self.client.get(
                "/api/v1/search",
                params={
                    "query": "*",
                    "filters": f"folder_id:{self.folder_id}",
                    "page": page,
                    "per_page_index": 1,
                },
            ).json()
            pending += [
                item["id"]
                for item in answer["asset_items"]
                if item["name"] not in self.complete_at
            ]
            if answer["last_page"] or not answer["asset_items"]:
                break
            page += 1
        if not pending:
            return
        details = self.client.post(
            "/api/v1/asset_items/batch", json={"ids": pending[:500]}
        ).json()
        now = time.time()
        for asset in details["asset_items"]:
            if asset["status"] == "complete":
                self.complete_at.setdefault(asset["name"], now)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--settle", type=float, default=1.0, help="settle_seconds")
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    root = work / "watched"
    root.mkdir()
    with emulator_process() as (url, _):
        folder_id = make_folder(url, "latency")
        config = write_config(work, url, root, folder_id, args.settle)
        log = open(work / "agent.log", "wb")  # noqa: SIM115
        agent = subprocess.Popen(
            [PYTHON, "-m", "syncagent", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        poller = CompletionPoller(url, folder_id, args.poll)
        try:
            poller.thread.start()
            closed_at = drop_files(root, args, agent, work)
            wait_for_all(poller, closed_at, timeout=60 + args.files * 2)
        finally:
            poller.stop.set()
            agent.send_signal(signal.SIGTERM)
            agent.wait(60)
            log.close()
    report(closed_at, poller.complete_at, args)


def drop_files(
    root: Path, args: argparse.Namespace, agent: subprocess.Popen[bytes], work: Path
) -> dict[str, float]:
    """Wait for the agent to start, then write the files; when each was closed."""
    deadline = time.monotonic() + 60
    while b"agent started" not in (work / "agent.log").read_bytes():
        if agent.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((work / "agent.log").read_text())
        time.sleep(0.05)
    closed_at: dict[str, float] = {}
    payload = b"x" * args.size
    for index in range(args.files):
        name = f"file_{index:04d}.bin"
        with open(root / name, "wb") as stream:
            stream.write(index.to_bytes(4, "big") + payload[4:])
        closed_at[name] = time.time()
        time.sleep(args.interval)
    return closed_at


def wait_for_all(
    poller: CompletionPoller, closed_at: dict[str, float], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while len(poller.complete_at) < len(closed_at):
        if time.monotonic() > deadline:
            missing = sorted(set(closed_at) - set(poller.complete_at))
            raise SystemExit(f"{len(missing)} files never completed: {missing[:5]}")
        time.sleep(0.1)


def report(
    closed_at: dict[str, float],
    complete_at: dict[str, float],
    args: argparse.Namespace,
) -> None:
    latencies = [complete_at[name] - closed for name, closed in closed_at.items()]
    median = statistics.median(latencies)
    p95 = percentile(latencies, 0.95)
    if args.json:
        print(
            json.dumps(
                {
                    "files": len(latencies),
                    "settle_seconds": args.settle,
                    "median_seconds": round(median, 3),
                    "p95_seconds": round(p95, 3),
                    "min_seconds": round(min(latencies), 3),
                    "max_seconds": round(max(latencies), 3),
                }
            )
        )
        return
    print(
        f"latency: {len(latencies)} files of {args.size} bytes, one every "
        f"{args.interval} s; closed in a watched folder -> asset complete in Compass"
    )
    print(f"  settle_seconds  {args.settle:6.2f} s")
    print(f"  median          {median:6.2f} s  (settle + {median - args.settle:.2f} s)")
    print(f"  p95             {p95:6.2f} s  (settle + {p95 - args.settle:.2f} s)")
    print(f"  min / max       {min(latencies):6.2f} / {max(latencies):.2f} s")
    print(f"  (completion seen by polling every {args.poll} s)")


if __name__ == "__main__":
    main()

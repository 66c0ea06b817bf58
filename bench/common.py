"""Shared pieces of the benchmarks: an emulator in its own process, timing, stats."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def compile_product() -> None:
    """Byte-compile syncagent, as installing it does.

    With PYTHONDONTWRITEBYTECODE set (some CI images and dev shells set it) an
    editable install compiles every module from source on each start, about 0.1 s
    that an installed agent never pays.
    """
    subprocess.run(
        [
            PYTHON,
            "-m",
            "compileall",
            "-q",
            str(Path(__file__).parents[1] / "syncagent"),
        ],
        check=True,
    )


@contextmanager
def emulator_process(extra: list[str] | None = None) -> Iterator[tuple[str, int]]:
    """Start `syncagent emulator` in its own process; yield its URL and PID."""
    compile_product()
    data = Path(tempfile.mkdtemp(prefix="bench-emulator-"))
    port = free_port()
    command = [
        PYTHON,
        "-m",
        "syncagent",
        "emulator",
        "--port",
        str(port),
        "--data",
        str(data),
        *(extra or []),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/_emulator/stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def login(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/authenticate", json={"username": "demo", "password": "demo"}
    )
    answer.raise_for_status()
    client.headers["authorization"] = f"Bearer {answer.json()['access_token']}"


def make_folder(url: str, name: str, parent: int = 1001) -> int:
    with httpx.Client(base_url=url, timeout=60) as client:
        login(client)
        answer = client.post(
            "/api/v1/folders", json={"name": name, "parent_id": parent}
        )
        answer.raise_for_status()
        return int(answer.json()["id"])


def write_agent_config(
    directory: Path, url: str, local: Path, folder_id: int, **transfer: object
) -> Path:
    lines = [
        "[compass]",
        f'url = "{url}"',
        'username = "demo"',
        'password = "demo"',
        "[ledger]",
        f'url = "sqlite:///{directory}/ledger.db"',
        "[transfer]",
    ]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in transfer.items()]
    lines += ["[[mapping]]", f'local = "{local}"', f"folder_id = {folder_id}"]
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def timed(command: list[str]) -> tuple[float, float, float]:
    """Seconds a command took from its start to its exit, its peak RSS in MB and
    its CPU seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[1:3]} failed")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime

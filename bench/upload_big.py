"""One big file: syncagent against `curl -T` of the same bytes to an emulator part URL.

The emulator runs in its own process and hashes what it receives either way; curl
hashes nothing on its side, so curl is the ceiling. syncagent must read the file once,
feeding each part's MD5 and the whole-file MD5, and verify the asset's checksum at the
end. Also prints the peak resident memory of the agent and of the emulator.

    python3 dev.py bench upload_big [--size-mib 1024] [--runs 3]

Known gap (December 2026, 2-core machine): syncagent reaches about 0.66-0.68 of curl
(target 0.85), 148 against 208-222 MiB/s. Its path hashes every byte four times (part
and whole-file MD5 in the agent, part MD5 and whole-file MD5 in the emulator) where
curl's hashes it once, and on this VM the emulator spends about 3 s of kernel CPU per
GiB copying what it receives into the page cache on either path. Per GiB the agent
uses 4.7 s of CPU and the emulator 7.1 s, against 4.8 s on curl's path; with both
cores busy the bound printed below is about 0.78, under the target: a cheaper
emulator would lower it further (curl's path is the emulator alone), so the gap is
the benchmark's four hashes on two cores, not time the agent loses. The rest of the
gap to the bound is time when the emulator, near one core busy, keeps the agent
waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from common import (
    PYTHON,
    cpu_count,
    cpu_seconds,
    emulator_process,
    login,
    make_folder,
    median,
    peak_rss_mb,
    write_agent_config,
)

MIB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as stream:
        for index in range(size // MIB):
            stream.write(index.to_bytes(8, "big") + block[8:])


def curl_upload(url: str, folder_id: int, path: Path) -> float:
    """Seconds for curl to PUT the whole file to a one-part upload URL."""
    size = path.stat().st_size
    with httpx.Client(base_url=url, timeout=600) as client:
        login(client)
        item = {"name": path.name, "folder_ids": [folder_id], "file_size": size}
        created = client.post("/api/v2/uploads/http", json={"asset_items": [item]})
        asset_id = created.json()["asset_items"][0]["id"]
        base = f"/api/v2/multipart/asset_items/{asset_id}"
        client.post(f"{base}/initiate", json={"part_size": size}).raise_for_status()
        urls = client.post(f"{base}/retrieve_upload_urls", json={"part_numbers": [1]})
        part_url = urls.json()["retrieve_upload_urls"][0]["upload_url"]
    started = time.perf_counter()
    process = subprocess.Popen(
        ["curl", "-sS", "-o", "/dev/null", "-T", str(path), part_url]
    )
    _, status, _usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("curl failed")
    return time.perf_counter() - started


def md5_speed() -> float:
    """MiB/s of MD5 on one core, measured now."""
    data = os.urandom(256 * MIB)
    started = time.perf_counter()
    hashlib.md5(data).hexdigest()
    return 256 / (time.perf_counter() - started)


def agent_upload(url: str, folder_id: int, root: Path) -> tuple[float, float, float]:
    """Seconds for `syncagent sync` of the file, its peak RSS in MB, its CPU s."""
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    config = write_agent_config(work, url, root, folder_id)
    started = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "-m", "syncagent", "sync", "--config", str(config), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("syncagent sync failed")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB

    curl_times, agent_times, agent_rss = [], [], []
    emulator_cpu_curl, emulator_cpu_agent, agent_cpu = [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="bench-big-") as tmp,
        emulator_process() as (url, emulator_pid),
    ):
        for run in range(args.runs):
            root = Path(tmp) / f"run{run}"
            root.mkdir()
            make_file(root / "big.mov", size)

            before = cpu_seconds(emulator_pid)
            curl_times.append(
                curl_upload(url, make_folder(url, f"curl-{run}"), root / "big.mov")
            )
            emulator_cpu_curl.append(cpu_seconds(emulator_pid) - before)

            before = cpu_seconds(emulator_pid)
            folder_id = make_folder(url, f"agent-{run}")
            seconds, rss, cpu = agent_upload(url, folder_id, root)
            emulator_cpu_agent.append(cpu_seconds(emulator_pid) - before)
            agent_times.append(seconds)
            agent_rss.append(rss)
            agent_cpu.append(cpu)
            print(
                f"run {run + 1}: curl {size / MIB / curl_times[-1]:.0f} MiB/s, "
                f"syncagent {size / MIB / seconds:.0f} MiB/s, "
                f"agent peak RSS {rss:.0f} MB"
            )
            shutil.rmtree(root)
        emulator_rss = peak_rss_mb(emulator_pid)

    gib = size / (1024 * MIB)
    curl, agent = median(curl_times), median(agent_times)
    agent_path_cpu = (median(agent_cpu) + median(emulator_cpu_agent)) / gib
    cores = cpu_count()
    print(f"file: {args.size_mib} MiB, {cores} CPUs; medians of {args.runs} runs")
    print(f"MD5 on one core, now: {md5_speed():.0f} MiB/s")
    print(f"curl -T to a part URL (ceiling): {size / MIB / curl:.0f} MiB/s")
    print(f"syncagent sync (whole command, verified): {size / MIB / agent:.0f} MiB/s")
    print(f"ratio syncagent / curl: {curl / agent:.2f}  (target >= 0.85)")
    print(
        "CPU per GiB: curl path, emulator "
        f"{median(emulator_cpu_curl) / gib:.1f} s; syncagent path, agent "
        f"{median(agent_cpu) / gib:.1f} s + emulator "
        f"{median(emulator_cpu_agent) / gib:.1f} s"
    )
    bound = (curl / gib) / (agent_path_cpu / cores)
    print(
        f"ratio bound if the syncagent path kept all {cores} cores busy: {bound:.2f} "
        "(it hashes every byte four times: part and whole-file MD5 in the agent, "
        "part MD5 and whole-file MD5 in the emulator; curl's path hashes once)"
    )
    print(
        f"peak RSS: syncagent {max(agent_rss):.0f} MB (target < 150), "
        f"emulator {emulator_rss:.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Every benchmark under bench/ still runs and prints its figures (at a tiny size).

The figures themselves are not asserted: timing belongs to the benchmarks, run on a
quiet machine. This only keeps the scripts from rotting as the product changes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

RUNS = {
    "small_files": (
        ["--files", "20", "--size", "4096", "--runs", "1"],
        [r"ratio syncagent / peer: \d+\.\d\d", r"CPU per file \(ms, medians\): peer"],
    ),
    "upload_big": (
        ["--size-mib", "16", "--runs", "1"],
        [
            r"ratio syncagent / curl: \d+\.\d\d",
            r"ratio syncagent / peer: \d+\.\d\d",
            r"peak RSS: syncagent \d+ MB",
        ],
    ),
    "noop_scan": (
        ["--files", "200", "--runs", "1"],
        [r"bytes of file contents read by the no-op syncs: 0 \(must be 0\)"],
    ),
    "pull": (
        ["--assets", "6", "--size", "4096", "--runs", "1"],
        [r"downloads, plain httpx: [\d.]+ MB/s; syncagent pull pass: [\d.]+ MB/s"],
    ),
    "latency": (
        ["--files", "3", "--settle", "0.3", "--interval", "0.1"],
        [r"median\s+[\d.]+ s"],
    ),
    "emulator_upload": (
        ["--size-mib", "12"],
        [r"checksum: ok", r"emulator peak RSS: \d+ MB"],
    ),
}


def test_every_benchmark_is_covered() -> None:
    scripts = {path.stem for path in BENCH.glob("*.py")} - {"common"}
    assert scripts == set(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_runs_and_prints_its_figures(name: str) -> None:
    args, expected = RUNS[name]
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for pattern in expected:
        assert re.search(pattern, done.stdout), (pattern, done.stdout[-2000:])

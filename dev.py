#!/usr/bin/env python3
"""Developer entry point: set up .venv on first use, then run a task.

    python3 dev.py sync [ARGS]   sync examples/ into the embedded Compass emulator
    python3 dev.py test [ARGS]   run the test suite (pytest)
    python3 dev.py lint          ruff check, ruff format --check, mypy
    python3 dev.py bench NAME    run a benchmark from bench/

Needs only Python 3.11+ and network access to PyPI the first time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".syncagent-installed"


def ensure_venv() -> None:
    """Create .venv and install the project and its extras when pyproject changes."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs before anything checks
        sys.exit("syncagent needs Python 3.11 or newer")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("setting up .venv (first run only)...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev,media]"], check=True)
    STAMP.write_text(wanted)


def run(*command: str) -> int:
    """Run a command from .venv/bin in the project root; return its exit code."""
    program, *args = command
    return subprocess.call([str(BIN / program), *args], cwd=ROOT)


def test_args(args: list[str]) -> list[str]:
    """pytest's arguments: two workers unless the caller chose (-n, or -p no:xdist)."""
    if any(a.startswith("-n") or a == "no:xdist" for a in args):
        return args
    return ["-n", "2", *args]


def lint() -> int:
    """ruff check, ruff format --check, mypy: the first failure's code."""
    return (
        run("ruff", "check", ".")
        or run("ruff", "format", "--check", ".")
        or run("mypy", "syncagent")
    )


def bench(args: list[str]) -> int:
    """Run bench/NAME.py with the rest of the arguments."""
    if not args:
        print("bench: name a script in bench/", file=sys.stderr)
        return 2
    return run("python", str(ROOT / "bench" / f"{args[0]}.py"), *args[1:])


TASKS = {
    "sync": lambda args: run("syncagent", "sync", *args),
    "test": lambda args: run("pytest", *test_args(args)),
    "lint": lambda args: lint(),
    "bench": bench,
}


def main(argv: list[str]) -> int:
    """Dispatch a task."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    task, *args = argv
    if task not in TASKS:
        print(f"unknown task {task!r}\n{__doc__}", file=sys.stderr)
        return 2
    ensure_venv()
    return TASKS[task](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

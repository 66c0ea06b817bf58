"""A non-editable install carries the migrations: the ledger opens from a wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

OPEN_LEDGER = """
import sys, syncagent
from syncagent.ledger import Ledger
from syncagent.ledger.migrate import current_revision, head_revision
assert syncagent.__file__.startswith(sys.argv[1]), syncagent.__file__
ledger = Ledger("sqlite:///" + sys.argv[2])
print(current_revision(ledger.engine), head_revision(ledger.engine))
"""


def test_wheel_ships_the_migrations_and_opens_a_ledger(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, REPO],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("syncagent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "syncagent/migrations/env.py" in names
    assert "syncagent/migrations/script.py.mako" in names
    assert any(n.startswith("syncagent/migrations/versions/0001") for n in names)

    target = tmp_path / "installed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            target,
            wheel,
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", OPEN_LEDGER, str(target), str(tmp_path / "ledger.db")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    current, head = done.stdout.split()
    assert current == head

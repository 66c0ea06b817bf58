"""A no-op sync of a large tree: syncagent against a bare os.scandir + stat walk.

Builds a tree of small files (100,000 by default), records it in a ledger as synced
(the state a finished first sync leaves; uploading 100,000 files first would take
longer than the benchmark is worth), then times `syncagent sync` with nothing to do
against a bare recursive `os.scandir` + `stat` walk of the same tree, in the same run.
The sync must read 0 bytes of file contents.

    python3 dev.py bench noop_scan [--files N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import PYTHON, emulator_process, median, write_agent_config

from syncagent.config import load_config
from syncagent.engine.filters import PathFilter
from syncagent.engine.scanner import scan_tree
from syncagent.ledger import EntryRecord, Ledger

PER_DIR = 500


def make_tree(root: Path, count: int) -> None:
    for index in range(count):
        folder = root / f"d{index // PER_DIR:04d}"
        if index % PER_DIR == 0:
            folder.mkdir(parents=True)
        (folder / f"f{index:06d}.jpg").write_bytes(b"x")


def seed_ledger(config_path: Path) -> None:
    """Record every file and directory of the tree as synced."""
    config = load_config(config_path)
    mapping = config.mappings[0]
    tree = scan_tree(mapping.local_root, PathFilter(mapping.include, mapping.exclude))
    ledger = Ledger(config.ledger_url)
    mapping_id = ledger.ensure_mapping(str(mapping.local_root), mapping.folder_id)
    dirs = [
        EntryRecord(d, "dir", 5000 + i, None, d, None, None, None, None)
        for i, d in enumerate(sorted(tree.dirs))
    ]
    files = [
        EntryRecord(
            f.rel_path,
            "file",
            mapping.folder_id,
            100_000 + i,
            f.rel_path,
            f.size,
            f.mtime_ns,
            f.inode,
            "9dd4e461268c8034f5c8564e155c67a6",
        )
        for i, f in enumerate(tree.files.values())
    ]
    ledger.add_entries(mapping_id, dirs + files)
    ledger.close()


def bare_walk(root: Path) -> int:
    count = 0
    pending = [str(root)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp,
        emulator_process() as (
            url,
            _,
        ),
    ):
        work = Path(tmp)
        root = work / "tree"
        started = time.perf_counter()
        make_tree(root, args.files)
        config = write_agent_config(work, url, root, 1001)
        seed_ledger(config)
        print(
            f"tree of {args.files} files made and recorded in "
            f"{time.perf_counter() - started:.0f} s"
        )

        walk_times, sync_times, bytes_read = [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            assert bare_walk(root) == args.files
            walk_times.append(time.perf_counter() - started)

            started = time.perf_counter()
            done = subprocess.run(
                [PYTHON, "-m", "syncagent", "sync", "--config", str(config), "--json"],
                capture_output=True,
                text=True,
                check=True,
            )
            sync_times.append(time.perf_counter() - started)
            mapping = json.loads(done.stdout)["mappings"][0]
            assert mapping["unchanged"] == args.files, mapping
            bytes_read.append(mapping["bytes_read"])
            pass_seconds = mapping["seconds"]

    walk, sync = median(walk_times), median(sync_times)
    print(f"bare os.scandir + stat walk: {walk:.2f} s (median of {args.runs})")
    print(
        f"syncagent sync, nothing to do: {sync:.2f} s whole command, "
        f"{pass_seconds:.2f} s in the pass"
    )
    print(
        f"ratio sync / walk: {sync / walk:.1f}x (whole command), "
        f"{pass_seconds / walk:.1f}x (pass)"
    )
    print(
        f"bytes of file contents read by the no-op syncs: {max(bytes_read)} (must be 0)"
    )


if __name__ == "__main__":
    main()

"""One large upload through the emulator: its peak memory and the throughput.

Starts `syncagent emulator` in its own process, writes a file of random bytes to a
temporary directory, uploads it with plain httpx through the documented multipart
calls (parts of 8 MiB by default, or one part with --part-mib 0), checks the
asset's checksum, then prints the emulator's peak resident memory (VmHWM) and
the MB/s. The emulator must keep its peak under 150 MB for a 1 GiB upload.

    python3 bench/emulator_upload.py [--size-mib 1024] [--part-mib 8] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import emulator_process, login, peak_rss_mb

MIB = 1024 * 1024
URL_BATCH = 100
RSS_LIMIT_MB = 150.0


def write_random_file(path: Path, size: int) -> str:
    """Fill `path` with `size` random bytes; return their MD5."""
    digest = hashlib.md5()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(MIB, remaining))
            digest.update(block)
            out.write(block)
            remaining -= len(block)
    return digest.hexdigest()


def file_slices(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """Stream `length` bytes of `path` from `offset` in 1 MiB reads."""
    with path.open("rb") as source:
        source.seek(offset)
        remaining = length
        while remaining:
            block = source.read(min(MIB, remaining))
            if not block:
                raise OSError(f"{path}: ended early")
            remaining -= len(block)
            yield block


def put_part(url: str, path: Path, offset: int, length: int) -> str:
    """PUT one part, streamed from the file; return the MD5 the server saw."""
    digest = hashlib.md5()

    def body() -> Iterator[bytes]:
        for block in file_slices(path, offset, length):
            digest.update(block)
            yield block

    answer = httpx.put(
        url, content=body(), headers={"Content-Length": str(length)}, timeout=300
    )
    answer.raise_for_status()
    if answer.headers["etag"].strip('"') != digest.hexdigest():
        raise RuntimeError(f"part at {offset}: the server's ETag differs")
    return digest.hexdigest()


def upload(
    client: httpx.Client, path: Path, size: int, part_size: int, concurrency: int
) -> int:
    """Create an asset and upload `path` through the multipart calls."""
    item = {"folder_ids": [1001], "name": path.name, "file_size": size}
    created = client.post("/api/v2/uploads/http", json={"asset_items": [item]})
    created.raise_for_status()
    asset_id = int(created.json()["asset_items"][0]["id"])
    base = f"/api/v2/multipart/asset_items/{asset_id}"
    initiated = client.post(f"{base}/initiate", json={"part_size": part_size})
    initiated.raise_for_status()
    count = int(initiated.json()["part_count"])

    with ThreadPoolExecutor(concurrency) as pool:
        for first in range(1, count + 1, URL_BATCH):
            numbers = list(range(first, min(first + URL_BATCH, count + 1)))
            send_batch(client, base, pool, numbers, (path, size, part_size))

    client.post(f"{base}/complete", json={}).raise_for_status()
    return asset_id


def send_batch(
    client: httpx.Client,
    base: str,
    pool: ThreadPoolExecutor,
    numbers: list[int],
    source: tuple[Path, int, int],
) -> None:
    """Get URLs for a batch of parts, PUT them in parallel, confirm them.

    `source` is the file, its size and the part size.
    """
    path, size, part_size = source
    answer = client.post(f"{base}/retrieve_upload_urls", json={"part_numbers": numbers})
    answer.raise_for_status()
    urls = {
        u["part_number"]: u["upload_url"] for u in answer.json()["retrieve_upload_urls"]
    }

    def send(number: int) -> dict[str, object]:
        offset = (number - 1) * part_size
        checksum = put_part(urls[number], path, offset, min(part_size, size - offset))
        return {"part_number": number, "checksum": checksum}

    claims = list(pool.map(send, numbers))
    client.post(f"{base}/complete_parts", json={"parts": claims}).raise_for_status()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8, help="0: one part")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    size = args.size_mib * MIB
    part_size = args.part_mib * MIB if args.part_mib else max(size, 1)

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as scratch:
        path = Path(scratch) / "large.bin"
        print(f"writing {args.size_mib} MiB of random bytes ...", flush=True)
        expected = write_random_file(path, size)
        with (
            emulator_process() as (url, pid),
            httpx.Client(base_url=url, timeout=300) as client,
        ):
            login(client)
            idle = peak_rss_mb(pid)
            started = time.perf_counter()
            asset_id = upload(client, path, size, part_size, args.concurrency)
            elapsed = time.perf_counter() - started
            peak = peak_rss_mb(pid)
            checksum = client.get(f"/api/v1/asset_items/{asset_id}").json()["checksum"]

    parts = f"{args.part_mib} MiB parts" if args.part_mib else "one part"
    print(f"uploaded {args.size_mib} MiB in {elapsed:.1f} s", end=" ")
    print(f"({parts}, {args.concurrency} at once; upload through complete)")
    print(f"throughput: {size / MIB / elapsed:.0f} MB/s")
    print(f"emulator peak RSS: {peak:.0f} MB", end=" ")
    print(f"(idle {idle:.0f} MB; limit {RSS_LIMIT_MB:.0f} MB)")
    print(f"checksum: {'ok' if checksum == expected else 'MISMATCH'}")
    if checksum != expected or peak >= RSS_LIMIT_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

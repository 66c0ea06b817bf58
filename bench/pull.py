"""Pulls: syncagent's listing and downloads against plain httpx doing the same calls.

The assets are put into a folder of an emulator running in its own process. Then,
alternating, each side lists the folder (search, every page, plus batch details) and
downloads every asset (a `POST /api/v3/downloads` URL, then the GET) with the same
concurrency. The plain httpx side writes the bytes and nothing else; the agent runs a
whole pull pass (listing, plan, temp files, MD5 checks, fsync, placement, ledger).
Medians are compared as ratios.

    python3 dev.py bench pull [--assets N] [--size BYTES] [--runs R]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
from common import emulator_process, login, make_folder, median

from syncagent.compass import CompassClient
from syncagent.config import (
    AgentConfig,
    CompassConfig,
    Config,
    MappingConfig,
    TransferConfig,
)
from syncagent.engine.progress import NoProgress
from syncagent.engine.remote_tree import list_remote_tree
from syncagent.runtime import open_runtime, run_pull_pass

CREATE_BATCH = 100
PART_SIZE = 5 * 1024 * 1024


def seed_assets(url: str, folder_id: int, count: int, size: int) -> int:
    """Put `count` assets of `size` bytes into a folder; return the bytes stored."""
    block = bytes(range(256)) * (size // 256 + 1)
    with httpx.Client(base_url=url, timeout=120) as client:
        login(client)
        ids: list[int] = []
        for start in range(0, count, CREATE_BATCH):
            items = [
                {
                    "name": f"asset_{i:05d}.bin",
                    "folder_ids": [folder_id],
                    "file_size": size,
                }
                for i in range(start, min(count, start + CREATE_BATCH))
            ]
            created = client.post("/api/v2/uploads/http", json={"asset_items": items})
            created.raise_for_status()
            ids += [item["id"] for item in created.json()["asset_items"]]

        def send(index: int, asset_id: int) -> None:
            data = index.to_bytes(4, "big") + block[: size - 4]
            parts = [data[i : i + PART_SIZE] for i in range(0, size, PART_SIZE)] or [
                b""
            ]
            base = f"/api/v2/multipart/asset_items/{asset_id}"
            client.post(
                f"{base}/initiate", json={"part_size": PART_SIZE}
            ).raise_for_status()
            numbers = list(range(1, len(parts) + 1))
            answer = client.post(
                f"{base}/retrieve_upload_urls", json={"part_numbers": numbers}
            ).json()["retrieve_upload_urls"]
            urls = {item["part_number"]: item["upload_url"] for item in answer}
            claims = []
            for number, part in zip(numbers, parts, strict=True):
                # Presigned: no bearer token (S3 refuses a second auth mechanism).
                httpx.put(urls[number], content=part).raise_for_status()
                claims.append({"part_number": number, "checksum": _md5(part)})
            client.post(
                f"{base}/complete_parts", json={"parts": claims}
            ).raise_for_status()
            client.post(f"{base}/complete", json={}).raise_for_status()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(len(ids)), ids))
    return count * size


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- plain httpx -----------------------------------------------------------------------


def plain_listing(client: httpx.Client, folder_id: int) -> list[dict[str, Any]]:
    """Every asset of a folder with its details: search pages, then batch details."""
    ids: list[int] = []
    page = 1
    while True:
        params = {
            "query": "*",
            "filters": f"folder_id:{folder_id}",
            "page": page,
            "per_page_index": 1,
            "without_aggregations": "true",
        }
        result = client.get("/api/v1/search", params=params).json()
        ids += [item["id"] for item in result["asset_items"]]
        if result["last_page"] or not result["asset_items"]:
            break
        page += 1
    details: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        batch = {"ids": ids[start : start + 500], "skip_actions": True}
        details += client.post("/api/v1/asset_items/batch", json=batch).json()[
            "asset_items"
        ]
    return details


def plain_downloads(
    client: httpx.Client, assets: list[dict[str, Any]], target: Path, concurrency: int
) -> int:
    """Download every asset's source to `target`; return the bytes written."""
    target.mkdir(parents=True)

    def one(asset: dict[str, Any]) -> int:
        body = {
            "items": [{"asset_item_id": asset["id"], "source": True}],
            "method": "http",
        }
        url = client.post("/api/v3/downloads", json=body).json()["url"]
        written = 0
        # Presigned: S3 refuses a second auth mechanism, so no bearer token.
        request = client.build_request("GET", url)
        del request.headers["authorization"]
        with (
            closing(client.send(request, stream=True)) as response,
            open(target / asset["name"], "wb") as out,
        ):
            for chunk in response.iter_bytes(1024 * 1024):
                out.write(chunk)
                written += len(chunk)
        return written

    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(one, assets))


def plain_round(
    url: str, folder_id: int, work: Path, concurrency: int
) -> tuple[float, float, int]:
    limits = httpx.Limits(max_connections=concurrency + 4)
    with httpx.Client(base_url=url, timeout=120, limits=limits) as client:
        login(client)
        started = time.perf_counter()
        assets = plain_listing(client, folder_id)
        listed = time.perf_counter() - started
        started = time.perf_counter()
        plain_downloads(client, assets, work, concurrency)
        return listed, time.perf_counter() - started, len(assets)


# -- syncagent -------------------------------------------------------------------------


def agent_listing(url: str, folder_id: int) -> tuple[float, int]:
    with CompassClient(url, "demo", "demo") as client:
        client.authenticate()
        started = time.perf_counter()
        tree = list_remote_tree(client, folder_id)
        return time.perf_counter() - started, len(tree.assets)


def agent_pull(url: str, folder_id: int, work: Path, concurrency: int) -> float:
    """One whole pull pass into an empty mirror; return its duration."""
    config = Config(
        path=work / "agent.toml",
        compass=CompassConfig(url, "demo", "demo"),
        ledger_url=f"sqlite:///{work}/ledger.db",
        transfer=TransferConfig(concurrency=concurrency),
        agent=AgentConfig(),
        mappings=(MappingConfig(work / "mirror", folder_id, direction="download"),),
        embedded_data=work / "unused",
    )
    with open_runtime(config, "sync") as runtime:
        runtime.client.authenticate()
        started = time.perf_counter()
        report = run_pull_pass(runtime, config.mappings[0], NoProgress())
        seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"the pull failed: {report.fatal or report.failures[:3]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=400)
    parser.add_argument("--size", type=int, default=512 * 1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    plain_list, plain_get, agent_list, agent_get = [], [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp,
        emulator_process() as (
            url,
            _,
        ),
    ):
        folder_id = make_folder(url, "pull-bench")
        total = seed_assets(url, folder_id, args.assets, args.size)
        for run in range(args.runs):
            listed, fetched, count = plain_round(
                url, folder_id, Path(tmp, f"plain{run}"), args.concurrency
            )
            plain_list.append(listed)
            plain_get.append(fetched)
            listed_by_agent, agent_count = agent_listing(url, folder_id)
            agent_list.append(listed_by_agent)
            agent_get.append(
                agent_pull(url, folder_id, Path(tmp, f"agent{run}"), args.concurrency)
            )
            assert count == agent_count == args.assets
            print(
                f"run {run + 1}: listing {count / listed:.0f} vs "
                f"{count / listed_by_agent:.0f} assets/s, downloads "
                f"{total / fetched / 1e6:.1f} vs "
                f"{total / agent_get[-1] / 1e6:.1f} MB/s (plain httpx vs syncagent)"
            )

    mb = total / 1e6
    print(f"assets: {args.assets} x {args.size} bytes, concurrency {args.concurrency}")
    print(
        f"listing, plain httpx: {args.assets / median(plain_list):.0f} assets/s; "
        f"syncagent: {args.assets / median(agent_list):.0f} assets/s; "
        f"ratio {median(plain_list) / median(agent_list):.2f}"
    )
    print(
        f"downloads, plain httpx: {mb / median(plain_get):.1f} MB/s; "
        f"syncagent pull pass: {mb / median(agent_get):.1f} MB/s; "
        f"ratio {median(plain_get) / median(agent_get):.2f}"
    )


if __name__ == "__main__":
    main()

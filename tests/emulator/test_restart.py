"""Restarting the emulator on the same data directory keeps everything."""

from __future__ import annotations

from pathlib import Path

import httpx
from emu_helpers import MIN_PART, Api, md5

from syncagent.emulator.server import EmulatorServer


def test_restart_keeps_folders_assets_bytes_and_tokens(tmp_path: Path) -> None:
    data_dir = tmp_path / "emulator"
    with EmulatorServer(data_dir=data_dir) as first:
        api = Api(first.url)
        folder_id = api.post(
            "/api/v1/folders", {"name": "Kept", "parent_id": 1001}
        ).json()["id"]
        asset_id = api.upload(folder_id, "kept.txt", b"still here")
        token = api.token
        api.close()

    with EmulatorServer(data_dir=data_dir) as second:
        client = httpx.Client(
            base_url=second.url, headers={"authorization": f"Bearer {token}"}
        )
        detail = client.get(f"/api/v1/asset_items/{asset_id}").json()
        listing = client.get("/api/v1/folders/1001/subfolders").json()
        answer = client.post(
            "/api/v3/downloads",
            json={
                "items": [{"asset_item_id": asset_id, "source": True}],
                "method": "http",
            },
        )
        content = httpx.get(answer.json()["url"]).content
        client.close()

    assert (detail["status"], detail["checksum"]) == ("complete", md5(b"still here"))
    assert [f["name"] for f in listing["folders"]] == ["Kept"]
    assert content == b"still here"


def test_an_upload_continues_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "emulator"
    data = b"a" * MIN_PART + b"b" * 10
    with EmulatorServer(data_dir=data_dir, port=0) as first:
        api = Api(first.url)
        asset_id = api.create_asset(1001, "resumed.bin", len(data))
        api.initiate(asset_id, MIN_PART)
        urls = api.part_urls(asset_id, [1, 2])
        assert httpx.put(urls[1], content=data[:MIN_PART]).status_code == 200
        api.close()

    # The URLs name the old port; the same path and query are valid on the new one.
    with EmulatorServer(data_dir=data_dir) as second:
        api = Api(second.url)
        moved = urls[2].replace(first.url, second.url)
        assert httpx.put(moved, content=data[MIN_PART:]).status_code == 200
        api.multipart(
            asset_id,
            "complete_parts",
            {
                "parts": [
                    {"part_number": 1},
                    {"part_number": 2, "checksum": md5(b"b" * 10)},
                ]
            },
        )
        complete = api.multipart(asset_id, "complete")
        detail = api.asset(asset_id)
        api.close()

    assert complete.status_code == 204
    assert detail["checksum"] == md5(data)


def test_stop_is_idempotent_and_start_returns_the_url(tmp_path: Path) -> None:
    server = EmulatorServer(data_dir=tmp_path / "emulator")

    url = server.start()
    same = server.start()
    server.stop()
    server.stop()

    assert url == same == server.url
    assert url.startswith("http://127.0.0.1:")

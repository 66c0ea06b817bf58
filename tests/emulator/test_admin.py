"""The /_emulator/ helpers: users, permissions, counters, clock; loopback only."""

from __future__ import annotations

import asyncio
import os

import httpx
from emu_helpers import MIN_PART, Api, add_user

from syncagent.emulator.server import EmulatorServer


def test_stats_count_routes_and_bytes(api: Api) -> None:
    httpx.delete(f"{api.base_url}/_emulator/stats")
    data = os.urandom(MIN_PART + 100)
    asset_id = api.upload(1001, "a.bin", data)
    url = api.download_url({"asset_item_id": asset_id, "source": True})
    httpx.get(url, headers={"Range": "bytes=0-99"})

    stats = httpx.get(f"{api.base_url}/_emulator/stats").json()

    assert stats["requests"]["PUT /s3/parts/{key}/{part_number}"] == 2
    assert (
        stats["requests"]["POST /api/v2/multipart/asset_items/{asset_id}/complete"] == 1
    )
    assert stats["requests"]["GET /s3/objects/{key}"] == 1
    assert stats["part_uploads"] == 2
    assert stats["part_bytes_received"] == len(data)
    assert (stats["downloads"], stats["download_bytes_sent"]) == (1, 100)


def test_stats_reset(api: Api) -> None:
    api.get("/api/v1/vocabularies")

    reset = httpx.delete(f"{api.base_url}/_emulator/stats")
    stats = httpx.get(f"{api.base_url}/_emulator/stats").json()

    assert reset.status_code == 204
    assert stats["requests"] == {}
    assert stats["part_bytes_received"] == 0


def test_set_permissions_takes_effect(api: Api) -> None:
    user = add_user(api.base_url, "editor", {"1001": "all"})
    before = user.post("/api/v1/folders", {"name": "A", "parent_id": 1001})

    changed = httpx.put(
        f"{api.base_url}/_emulator/users/editor/permissions/1001", json={"view": True}
    )
    after = user.post("/api/v1/folders", {"name": "B", "parent_id": 1001})
    user.close()

    assert before.status_code == 201
    assert changed.json()["folder_manage"] is False
    assert changed.json()["view"] is True
    assert after.status_code == 403


def test_helpers_reject_bad_input(api: Api) -> None:
    unknown_grant = httpx.post(
        f"{api.base_url}/_emulator/users",
        json={"name": "x", "password": "y", "permissions": {"1001": ["fly"]}},
    )
    no_folder = httpx.put(
        f"{api.base_url}/_emulator/users/demo/permissions/4040", json=["view"]
    )

    assert unknown_grant.status_code == 422
    assert no_folder.status_code == 404


def test_helpers_are_hidden_from_other_hosts(emulator: EmulatorServer) -> None:
    app = emulator._server.config.app  # type: ignore[union-attr]

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://x"
        ) as client:
            return await client.get("/_emulator/stats")

    response = asyncio.run(ask())

    assert response.status_code == 404

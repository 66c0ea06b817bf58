"""--ingest-delay: the asset takes its file a while after `complete` answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from emu_helpers import MIN_PART, Api, advance_clock, md5

from syncagent.cli import main
from syncagent.emulator.server import EmulatorServer

DELAY = 60.0


@pytest.fixture
def slow_ingest(tmp_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(data_dir=tmp_path / "emulator", ingest_delay=DELAY) as server:
        yield server


@pytest.fixture
def api(slow_ingest: EmulatorServer) -> Iterator[Api]:
    client = Api(slow_ingest.url)
    try:
        yield client
    finally:
        client.close()


def _download(api: Api, asset_id: int) -> httpx.Response:
    item = {"asset_item_id": asset_id, "source": True}
    return api.post("/api/v3/downloads", {"items": [item], "method": "http"})


def _in_listings(api: Api, asset_id: int) -> list[dict[str, Any]]:
    """The asset as batch and search show it."""
    batch = api.post("/api/v1/asset_items/batch", {"ids": [asset_id]}).json()
    search = api.get(
        "/api/v1/search", params={"query": "*", "filters": "folder_id:1001"}
    ).json()
    found = [item for item in search["asset_items"] if item["id"] == asset_id]
    return [*batch["asset_items"], *found]


def _revise(api: Api, asset_id: int, data: bytes) -> None:
    response = api.post(
        "/api/v1/asset_items/revisions",
        {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": "a.txt",
                "file_size": len(data),
            },
            "upload_type": "http",
        },
    )
    assert response.status_code == 201, response.text
    api.send_parts(asset_id, data, MIN_PART)
    assert api.multipart(asset_id, "complete").status_code == 204


def test_a_new_asset_stays_created_until_the_delay_has_passed(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"new bytes")

    pending = api.asset(asset_id)
    listed = _in_listings(api, asset_id)
    refused = _download(api, asset_id)
    advance_clock(api.base_url, DELAY)
    ingested = api.asset(asset_id)

    assert (pending["status"], pending["size"], pending["checksum"]) == (
        "created",
        None,
        None,
    )
    assert pending["downloadable"] is False
    assert len(listed) == 2
    assert all(item["size"] is None for item in listed)
    assert refused.status_code == 422
    assert (ingested["status"], ingested["size"], ingested["checksum"]) == (
        "complete",
        9,
        md5(b"new bytes"),
    )
    url = api.download_url({"asset_item_id": asset_id, "source": True})
    assert httpx.get(url).content == b"new bytes"
    assert _in_listings(api, asset_id)[0]["checksum"] == md5(b"new bytes")


def test_complete_again_while_ingesting_is_204(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"new bytes")

    again = api.multipart(asset_id, "complete")

    assert again.status_code == 204
    assert api.asset(asset_id)["status"] == "created"


def test_a_revision_shows_the_previous_file_until_ingested(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"version one")
    advance_clock(api.base_url, DELAY)
    _revise(api, asset_id, b"version two!")

    pending = api.asset(asset_id)
    old_bytes = httpx.get(
        api.download_url({"asset_item_id": asset_id, "source": True})
    ).content
    revisions_before = api.get(f"/api/v1/asset_items/{asset_id}/revisions").json()
    advance_clock(api.base_url, DELAY)
    ingested = api.asset(asset_id)
    new_bytes = httpx.get(
        api.download_url({"asset_item_id": asset_id, "source": True})
    ).content

    assert (pending["status"], pending["checksum"]) == ("complete", md5(b"version one"))
    assert old_bytes == b"version one"
    assert revisions_before == []
    assert (ingested["checksum"], ingested["size"]) == (md5(b"version two!"), 12)
    assert new_bytes == b"version two!"
    assert len(api.get(f"/api/v1/asset_items/{asset_id}/revisions").json()) == 1


def test_deleting_an_asset_while_ingesting_drops_its_file(
    api: Api, slow_ingest: EmulatorServer
) -> None:
    asset_id = api.upload(1001, "a.txt", b"short-lived")
    removal = [{"asset_item_id": asset_id, "folder_ids": [1001]}]

    deleted = api.post("/api/v1/asset_items/delete_from_folders", removal)
    advance_clock(api.base_url, DELAY)
    after = api.get(f"/api/v1/asset_items/{asset_id}")

    assert deleted.status_code == 201
    assert after.status_code == 410
    sources = slow_ingest.data_dir / "objects" / "sources"
    assert not any(sources.iterdir())


def test_a_pending_ingest_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "emulator"
    with EmulatorServer(data_dir=data_dir, ingest_delay=DELAY) as first:
        api = Api(first.url)
        asset_id = api.upload(1001, "a.txt", b"kept")
        api.close()

    with EmulatorServer(data_dir=data_dir) as second:
        api = Api(second.url)
        pending = api.asset(asset_id)["status"]
        advance_clock(second.url, DELAY)
        ingested = api.asset(asset_id)
        api.close()

    assert pending == "created"
    assert (ingested["status"], ingested["checksum"]) == ("complete", md5(b"kept"))


def test_without_a_delay_the_asset_is_complete_at_once(
    emulator: EmulatorServer,
) -> None:
    api = Api(emulator.url)
    asset_id = api.upload(1001, "a.txt", b"at once")

    assert api.asset(asset_id)["status"] == "complete"
    api.close()


def test_the_command_takes_an_ingest_delay() -> None:
    result = CliRunner().invoke(main, ["emulator", "--ingest-delay=-1"])

    assert result.exit_code == 2
    assert "'--ingest-delay': -1.0 is not in the range" in result.output

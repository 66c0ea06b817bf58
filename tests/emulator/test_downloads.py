"""Downloads: signed URLs for sources, revisions and proxies; Range and HEAD."""

from __future__ import annotations

import httpx
import pytest
from emu_helpers import Api, add_user, advance_clock, multipart_etag, wait_idle

from syncagent.emulator.proxies import ffmpeg_available
from syncagent.emulator.server import EmulatorServer

DATA = bytes(range(256)) * 4


@pytest.fixture
def source_url(api: Api) -> str:
    asset_id = api.upload(1001, "bytes.bin", DATA)
    return api.download_url({"asset_item_id": asset_id, "source": True})


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1020-5000", 1020, 1023),
    ],
)
def test_single_ranges_are_206(
    source_url: str, header: str, first: int, last: int
) -> None:
    response = httpx.get(source_url, headers={"Range": header})

    assert response.status_code == 206
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/1024"
    assert response.headers["content-length"] == str(last - first + 1)


def test_unsatisfiable_range_is_416(source_url: str) -> None:
    response = httpx.get(source_url, headers={"Range": "bytes=1024-"})

    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1024"


def test_several_ranges_get_the_whole_object(source_url: str) -> None:
    response = httpx.get(source_url, headers={"Range": "bytes=0-1,5-6"})

    assert response.status_code == 200
    assert response.content == DATA


def test_head_on_a_url_signed_for_get_is_403(source_url: str) -> None:
    response = httpx.head(source_url)

    # As in S3 the method is part of the signature.
    assert response.status_code == 403


def test_head_gives_size_and_etag_without_a_body(
    emulator: EmulatorServer, source_url: str
) -> None:
    path = httpx.URL(source_url).path
    head_url = emulator.context.signer.sign(emulator.url, "HEAD", path, 60)

    response = httpx.head(head_url)

    assert response.status_code == 200
    assert response.headers["content-length"] == "1024"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{multipart_etag([DATA])}"'
    assert response.content == b""


def test_download_url_expires(api: Api, source_url: str) -> None:
    advance_clock(api.base_url, 901)

    response = httpx.get(source_url)

    assert response.status_code == 403
    assert "Request has expired" in response.text


def test_tampered_download_url_is_403(source_url: str) -> None:
    signed = httpx.URL(source_url)
    response = httpx.get(signed.copy_with(path=signed.path + "x"))

    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_download_needs_the_download_permission(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"secret")
    viewer = add_user(api.base_url, "viewer", {"1001": ["view"]})

    response = viewer.post(
        "/api/v3/downloads",
        {"items": [{"asset_item_id": asset_id, "source": True}], "method": "http"},
    )
    viewer.close()

    assert response.status_code == 403


def test_download_of_an_unfinished_asset_is_422(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.txt", 3)

    response = api.post(
        "/api/v3/downloads",
        {"items": [{"asset_item_id": asset_id, "source": True}], "method": "http"},
    )

    assert response.status_code == 422


def test_download_requests_that_cannot_be_served_are_422(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"abc")
    item = {"asset_item_id": asset_id, "source": True}
    bodies = [
        {"items": [item], "method": "aspera"},
        {"items": [item, item], "method": "http"},
        {
            "items": [{"asset_item_id": asset_id, "proxies": ["video_sd"]}],
            "method": "http",
        },
        {"items": [{"asset_item_id": asset_id}], "method": "http"},
    ]

    answers = [api.post("/api/v3/downloads", body) for body in bodies]

    assert [a.status_code for a in answers] == [422] * 4
    assert "Aspera" in answers[0].json()["errors"][0]


def test_best_available_proxy_falls_back_to_the_source(api: Api) -> None:
    asset_id = api.upload(1001, "notes.txt", b"plain text")

    response = api.post(
        "/api/v3/downloads",
        {
            "items": [{"asset_item_id": asset_id}],
            "best_available_proxy": True,
            "method": "http",
        },
    )

    assert httpx.get(response.json()["url"]).content == b"plain text"


def test_assets_without_proxies_list_an_empty_array(api: Api) -> None:
    document = api.upload(1001, "notes.txt", b"plain text")
    video = api.upload(1001, "clip.mov", b"not a real movie")
    wait_idle(api.base_url)

    listing = api.post(
        "/api/v2/asset_items/proxies", {"asset_items": [document, video]}
    )

    proxies = {item["id"]: item["proxies"] for item in listing.json()["asset_items"]}
    assert proxies[document] == []
    if not ffmpeg_available():
        assert proxies[video] == []
    unavailable = api.post(
        "/api/v2/asset_items/proxies/download/http",
        {"asset_items": [{"id": document, "proxies": ["small_thumbnail"]}]},
    )
    assert unavailable.status_code == 422


def test_proxy_download_expiration_is_checked(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"abc")

    past = api.post(
        "/api/v2/asset_items/proxies/download/http",
        {
            "asset_items": [{"id": asset_id, "proxies": []}],
            "expiration": "2001-01-01T00:00:00Z",
        },
    )

    assert past.status_code == 422
    assert past.json() == {"errors": ["expiration must be between now and 2038-01-01"]}

"""Contract tests: the reference's sample requests, replayed over real HTTP.

Each test sends a sample request of compass-api.txt (IDs swapped for the
emulator's own) and checks the status code and the response shape the reference
documents for it.
"""

from __future__ import annotations

import io
import json

import httpx
from emu_helpers import Api, md5, wait_idle
from PIL import Image

from syncagent.emulator.server import EmulatorServer

PERMISSION_KEYS = {
    "admin",
    "asset_delete",
    "download",
    "folder_delete",
    "folder_id",
    "folder_manage",
    "share",
    "upload",
    "view",
    "watermark",
}
CREATED_ASSET_KEYS = {
    "actions",
    "airdate",
    "asset_class",
    "episode_number",
    "gpms_id",
    "grid_display_name",
    "has_proxy",
    "icon_status",
    "id",
    "is_folder",
    "name",
    "root_title",
    "season",
    "show_number",
    "size",
    "tape_date",
    "thumbnail_url",
    "type",
    "updated_at",
}
ASSET_DETAIL_KEYS = {
    "actions",
    "archive_status",
    "archived",
    "asset_class",
    "asset_owner",
    "asset_subtype",
    "asset_type",
    "asset_type_or_class",
    "checksum",
    "created_at",
    "custom_metadata",
    "downloadable",
    "file_name",
    "folder_ids",
    "has_proxy",
    "icon_status",
    "id",
    "is_audio",
    "is_video",
    "linked_asset_group_id",
    "managed_by",
    "mcs_id",
    "metadata_deprecated",
    "name",
    "pixel_dimensions",
    "restorable",
    "restore_hours_remaining",
    "restore_status",
    "restored",
    "restoring",
    "root_title",
    "scheduled_actions",
    "season",
    "series",
    "shareable",
    "show_identifier",
    "size",
    "status",
    "thumbnail_url",
    "titles",
    "uploaded_at",
    "uploaded_by",
    "usage_classification",
    "usage_restriction",
    "usage_status",
    "width",
    "updated_at",
}
REPLACEMENT_ASSET_KEYS = {
    "actions",
    "airdate",
    "alpha_name",
    "alpha_names",
    "asset_class",
    "episode_number",
    "file_name",
    "folders",
    "gpms_id",
    "has_playable_proxy",
    "height",
    "icon_status",
    "id",
    "is_folder",
    "name",
    "restore_hours_remaining",
    "restoring",
    "root_title",
    "season",
    "show_number",
    "size",
    "subtype",
    "tape_date",
    "thumbnail_url",
    "title_name",
    "title_names",
    "type",
    "uploaded_at",
    "usage_restriction",
    "width",
    "scheduled_actions",
    "linked_asset_groups",
}
SEARCH_ITEM_KEYS = REPLACEMENT_ASSET_KEYS | {"usage_classification"}
BULK_UPDATE_KEYS = {
    "asset_owner",
    "asset_subtype",
    "asset_type",
    "checksum",
    "custom_metadata_fields",
    "file_size",
    "has_proxy",
    "id",
    "managed_by",
    "name",
    "naming_convention",
    "original_file_name",
    "titles",
    "usage_classification",
    "usage_status",
}


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_authenticate_sample(emulator: EmulatorServer) -> None:
    response = httpx.post(
        f"{emulator.url}/api/v1/authenticate",
        headers={"content-type": "application/json"},
        content=json.dumps({"username": "demo", "password": "demo"}),
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_at"}
    assert body["access_token"].count(".") == 2
    assert isinstance(body["expires_at"], int)


def test_authorized_request_carries_refresh_data(api: Api) -> None:
    response = api.get("/api/v1/folders/1001/subfolders")

    refresh = json.loads(response.headers["authorization-refresh-data"])
    assert set(refresh) == {"access_token", "expires_at"}
    assert response.headers["content-type"].startswith("application/json")
    again = httpx.get(
        f"{api.base_url}/api/v1/folders/1001/subfolders",
        headers={"authorization": f"Bearer {refresh['access_token']}"},
    )
    assert again.status_code == 200


def test_folder_creation_sample(api: Api) -> None:
    response = api.post("/api/v1/folders", {"name": "Test Folder", "parent_id": 1001})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "actions",
        "id",
        "is_folder",
        "name",
        "permissions",
        "size",
        "type",
        "updated_at",
    }
    assert body["name"] == "Test Folder"
    assert body["is_folder"] is True
    assert body["type"] == "Folder"


def test_list_subfolders_sample(api: Api) -> None:
    child = api.post("/api/v1/folders", {"name": "Child Folder A", "parent_id": 1001})
    api.post("/api/v1/folders", {"name": "Grandchild", "parent_id": child.json()["id"]})

    response = api.get("/api/v1/folders/1001/subfolders")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"folders", "id", "name", "permissions"}
    assert (body["id"], body["name"]) == (1001, "Dropbox")
    assert set(body["permissions"]) == PERMISSION_KEYS
    [folder] = body["folders"]
    assert set(folder) == {"id", "has_children", "name", "permissions"}
    assert folder["name"] == "Child Folder A"
    assert folder["has_children"] is True
    assert folder["permissions"]["folder_id"] == folder["id"]
    assert set(folder["permissions"]) == PERMISSION_KEYS


def test_create_asset_sample(api: Api) -> None:
    sample = {
        "asset_items": [
            {
                "folder_ids": [1001],
                "name": "my_test_file.jpg",
                "file_size": 1280000,
                "package": False,
                "gpms_ids": [12345],
                "titles": [{"gpms_id": 987, "alpha_id": 654}],
                "custom_metadata_fields": [
                    {
                        "category": "my_category",
                        "label": "my_field_label",
                        "value": "123ABC",
                    }
                ],
            }
        ]
    }

    response = api.post("/api/v2/uploads/http", sample)

    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["ingest_batch_id"], int)
    [item] = body["asset_items"]
    assert set(item) == CREATED_ASSET_KEYS
    assert item["asset_class"] == "image"
    assert item["name"] == "my_test_file.jpg"
    assert item["icon_status"] == "soulless"
    detail = api.asset(item["id"])
    assert detail["status"] == "created"
    assert detail["custom_metadata"] == {"my_category": {"my_field_label": "123ABC"}}
    assert [t["gpms_id"] for t in detail["titles"]] == [987, 12345]


def test_multipart_samples(api: Api) -> None:
    data = b"x" * (3 * 5242880 + 100)
    asset_id = api.create_asset(1001, "clip.mov", len(data))

    initiate = api.multipart(asset_id, "initiate", {"part_size": 5242880})
    assert initiate.status_code == 201
    assert initiate.json() == {"part_count": 4}

    urls = api.multipart(
        asset_id, "retrieve_upload_urls", {"part_numbers": [1, 2, 3, 4]}
    )
    assert urls.status_code == 201
    listed = urls.json()["retrieve_upload_urls"]
    assert [item["part_number"] for item in listed] == [1, 2, 3, 4]
    assert all(set(item) == {"part_number", "upload_url"} for item in listed)

    parts = [data[i * 5242880 : (i + 1) * 5242880] for i in range(4)]
    for item, part in zip(listed, parts, strict=True):
        put = httpx.put(item["upload_url"], content=part)
        assert put.status_code == 200
        assert put.headers["etag"] == f'"{md5(part)}"'

    claims = [{"part_number": n, "checksum": md5(p)} for n, p in enumerate(parts, 1)]
    complete_parts = api.multipart(asset_id, "complete_parts", {"parts": claims})
    assert complete_parts.status_code == 204
    complete = api.multipart(asset_id, "complete")
    assert complete.status_code == 204

    detail = api.asset(asset_id)
    assert (detail["status"], detail["size"]) == ("complete", len(data))
    assert detail["checksum"] == md5(data)


def test_get_asset_sample(api: Api) -> None:
    asset_id = api.upload(1001, "Glass_Half.mp4", b"video bytes")

    response = api.get(f"/api/v1/asset_items/{asset_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == ASSET_DETAIL_KEYS
    assert body["folder_ids"] == [1001]
    assert body["is_video"] is True
    assert body["actions"]["can_download"] is True


def test_bulk_asset_details_sample(api: Api) -> None:
    first = api.upload(1001, "test_asset.jpg", b"not really a jpeg")
    second = api.upload(1002, "other.txt", b"hello")

    response = api.post(
        "/api/v1/asset_items/batch",
        {"ids": [first, second, 999999], "skip_actions": True},
    )

    assert response.status_code == 200
    items = response.json()["asset_items"]
    assert [item["id"] for item in items] == [first, second]
    assert set(items[0]) == ASSET_DETAIL_KEYS - {"actions"}
    assert items[1]["checksum"] == md5(b"hello")


def test_delete_from_folders_sample(api: Api) -> None:
    both = api.create_asset(1001, "a.txt", 1)
    api.post(
        "/api/v1/asset_items/bulk_update",
        {"asset_items": [{"id": both, "name": "a.txt"}]},
    )
    other = api.upload(1002, "b.txt", b"b")

    response = api.post(
        "/api/v1/asset_items/delete_from_folders",
        [
            {"asset_item_id": both, "folder_ids": [1001]},
            {"asset_item_id": other, "folder_ids": [1002]},
        ],
    )

    assert response.status_code == 201
    assert api.get(f"/api/v1/asset_items/{both}").status_code == 410
    assert api.get(f"/api/v1/asset_items/{other}").status_code == 410


def test_bulk_update_samples(api: Api) -> None:
    asset_id = api.upload(1001, "invalid_video.mov", b"mov")
    fields = [
        {"category": "Content Details", "label": "Description", "value": "lorem ipsum"},
        {"category": "Content Details", "label": "Keywords", "value": ["bar", "foo"]},
        {"category": "Usage", "label": "Restriction", "value": "for internal use only"},
    ]
    item = {
        "id": asset_id,
        "asset_subtype_name": "Advertising",
        "asset_type_name": "Packshot",
        "usage_classification_name": "Internal Use",
        "usage_status_name": "Final",
        "gpms_ids": [12345],
    }

    first = api.post(
        "/api/v1/asset_items/bulk_update",
        {"asset_items": [{**item, "custom_metadata_fields": fields}]},
    )
    alternate = api.post(
        "/api/v1/asset_items/bulk_update", {"asset_items": [item], "metadata": fields}
    )

    for response in (first, alternate):
        assert response.status_code == 201
        [updated] = response.json()["bulk_update"]
        assert set(updated) == BULK_UPDATE_KEYS
        assert (updated["asset_type"], updated["asset_subtype"]) == (
            "Packshot",
            "Advertising",
        )
        assert updated["usage_status"] == "Final"
        assert updated["titles"][0]["gpms_id"] == 12345
        assert {f["label"] for f in updated["custom_metadata_fields"]} == {
            "Description",
            "Keywords",
            "Restriction",
        }
    detail = api.asset(asset_id)
    assert detail["custom_metadata"]["content_details"]["keywords"] == ["bar", "foo"]


def test_revision_samples(api: Api) -> None:
    asset_id = api.upload(1001, "splatoon.jpg", b"first")

    response = api.post(
        "/api/v1/asset_items/revisions",
        {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": "dont_panic.foo",
                "file_size": 6,
            },
            "upload_type": "http",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert {"connection_settings", "ingest_batch_id", "asset_items"} <= set(body)
    [item] = body["asset_items"]
    assert set(item) == REPLACEMENT_ASSET_KEYS
    assert (item["id"], item["icon_status"]) == (asset_id, "replacement")

    api.send_parts(asset_id, b"second", 5242880)
    assert api.multipart(asset_id, "complete").status_code == 204
    revisions = api.get(f"/api/v1/asset_items/{asset_id}/revisions")
    assert revisions.status_code == 200
    [revision] = revisions.json()
    assert set(revision) == {"id", "mcs_id", "ingest_id"}
    assert revision["ingest_id"] == body["ingest_batch_id"]


def test_replace_sample(api: Api) -> None:
    asset_id = api.upload(1001, "splatoon.jpg", b"old bytes")

    response = api.post(
        "/api/v1/asset_items/replace",
        {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": "bwv.jpg",
                "file_size": 3,
            },
            "upload_type": "http",
        },
    )

    assert response.status_code == 201
    [item] = response.json()["asset_items"]
    assert set(item) == REPLACEMENT_ASSET_KEYS
    assert item["id"] == asset_id


def test_vocabularies_sample(api: Api) -> None:
    response = api.get("/api/v1/vocabularies")

    assert response.status_code == 200
    body = response.json()
    for key in ("asset_owner", "asset_type", "usage_classification", "usage_status"):
        assert all(set(entry) >= {"name"} for entry in body[key])
    recap = next(entry for entry in body["asset_type"] if entry["name"] == "Recap")
    assert [sub["name"] for sub in recap["subtypes"]] == ["Season", "Episode", "Series"]


def test_search_sample(api: Api) -> None:
    asset_id = api.upload(1001, "01.txt", b"text")

    response = api.get("/api/v1/search", params={"query": "*"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "aggregations",
        "asset_items",
        "last_page",
        "matches",
        "subscription_id",
    }
    assert (body["matches"], body["last_page"]) == (1, True)
    [item] = body["asset_items"]
    assert set(item) == SEARCH_ITEM_KEYS
    assert item["id"] == asset_id
    assert item["folders"] == [{"id": 1001, "name": "Dropbox"}]
    assert body["aggregations"]["file_extension"] == {"txt": 1}


def test_proxy_samples(api: Api) -> None:
    asset_id = api.upload(1001, "test.png", _png(1200, 800))
    wait_idle(api.base_url)

    listing = api.post("/api/v2/asset_items/proxies", {"ids": [asset_id]})
    assert listing.status_code == 200
    body = listing.json()
    assert set(body) == {"asset_items", "external_assets"}
    [item] = body["asset_items"]
    assert set(item) == {"id", "asset_class", "asset_name", "original_size", "proxies"}
    sizes = {p["type"]: (p["width"], p["height"]) for p in item["proxies"]}
    assert sizes == {
        "large_thumbnail": (1000, 667),
        "medium_thumbnail": (560, 374),
        "small_thumbnail": (250, 167),
    }
    assert all(set(p) == {"height", "width", "size", "type"} for p in item["proxies"])

    download = api.post(
        "/api/v2/asset_items/proxies/download/http",
        {"asset_items": [{"id": asset_id, "proxies": ["large_thumbnail"]}]},
    )
    assert download.status_code == 200
    [entry] = download.json()["asset_items"]
    assert set(entry) == {"id", "large_thumbnail"}
    jpeg = httpx.get(entry["large_thumbnail"])
    assert jpeg.status_code == 200
    assert Image.open(io.BytesIO(jpeg.content)).size == (1000, 667)


def test_v3_download_samples(api: Api) -> None:
    asset_id = api.upload(1001, "photo.png", _png(300, 200))
    wait_idle(api.base_url)

    source = api.post(
        "/api/v3/downloads",
        {"items": [{"asset_item_id": asset_id, "source": True}], "method": "http"},
    )
    proxy = api.post(
        "/api/v3/downloads",
        {
            "items": [{"asset_item_id": asset_id, "proxies": ["small_thumbnail"]}],
            "method": "http",
        },
    )

    assert source.status_code == proxy.status_code == 200
    assert set(source.json()) == {"url"}
    assert httpx.get(source.json()["url"]).content == _png(300, 200)
    thumbnail = httpx.get(proxy.json()["url"])
    assert Image.open(io.BytesIO(thumbnail.content)).size == (250, 167)

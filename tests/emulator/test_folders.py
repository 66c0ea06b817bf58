"""Folders: unique names within a parent, permissions, inheritance."""

from __future__ import annotations

import pytest
from emu_helpers import Api, add_user


def test_duplicate_name_in_the_same_parent_is_422(api: Api) -> None:
    first = api.post("/api/v1/folders", {"name": "Shoots", "parent_id": 1001})
    again = api.post("/api/v1/folders", {"name": "Shoots", "parent_id": 1001})
    elsewhere = api.post("/api/v1/folders", {"name": "Shoots", "parent_id": 1002})

    assert first.status_code == 201
    assert again.status_code == 422
    assert "already exists" in again.json()["errors"][0]
    assert elsewhere.status_code == 201


def test_parent_must_exist(api: Api) -> None:
    response = api.post("/api/v1/folders", {"name": "Orphan", "parent_id": 99999})

    assert response.status_code == 422
    assert response.json() == {"errors": ["parent_id: folder 99999 does not exist"]}


def test_missing_folder_manage_permission_is_403(api: Api) -> None:
    viewer = add_user(api.base_url, "viewer", {"1001": ["view", "upload"]})

    response = viewer.post("/api/v1/folders", {"name": "Nope", "parent_id": 1001})
    viewer.close()

    assert response.status_code == 403
    assert response.json() == {"errors": ["no folder_manage permission on folder 1001"]}


def test_subfolders_list_only_what_the_user_may_view(api: Api) -> None:
    open_id = api.post("/api/v1/folders", {"name": "Open", "parent_id": 1001}).json()[
        "id"
    ]
    hidden_id = api.post(
        "/api/v1/folders", {"name": "Hidden", "parent_id": 1001}
    ).json()["id"]
    viewer = add_user(
        api.base_url, "viewer", {"1001": ["view"], str(open_id): ["view", "download"]}
    )

    listing = viewer.get("/api/v1/folders/1001/subfolders").json()
    denied = viewer.get(f"/api/v1/folders/{hidden_id}/subfolders")
    missing = viewer.get("/api/v1/folders/31337/subfolders")
    viewer.close()

    [child] = listing["folders"]
    assert (child["id"], child["name"]) == (open_id, "Open")
    assert child["permissions"]["download"] is True
    assert child["permissions"]["upload"] is False
    assert listing["permissions"]["folder_manage"] is False
    assert denied.status_code == 403
    assert missing.status_code == 404


def test_new_folder_inherits_the_parents_permissions(api: Api) -> None:
    uploader = add_user(api.base_url, "uploader", {"1001": ["view", "upload"]})
    child_id = api.post("/api/v1/folders", {"name": "Inbox", "parent_id": 1001}).json()[
        "id"
    ]

    response = uploader.post(
        "/api/v2/uploads/http",
        {"asset_items": [{"folder_ids": [child_id], "name": "a.txt", "file_size": 1}]},
    )
    uploader.close()

    assert response.status_code == 201


def test_upload_without_permission_is_403(api: Api) -> None:
    viewer = add_user(api.base_url, "viewer", {"1001": ["view"]})

    response = viewer.post(
        "/api/v2/uploads/http",
        {"asset_items": [{"folder_ids": [1001], "name": "a.txt", "file_size": 1}]},
    )
    viewer.close()

    assert response.status_code == 403
    assert response.json() == {"errors": ["no upload permission on folder 1001"]}


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/folders", b'{"name": "f\\ud800", "parent_id": 1001}'),
        (
            "/api/v2/uploads/http",
            b'{"asset_items": [{"folder_ids": [1001], "name": "a\\udc80.txt", '
            b'"file_size": 3}]}',
        ),
    ],
)
def test_a_name_with_an_unpaired_surrogate_is_422(
    api: Api, path: str, raw: bytes
) -> None:
    response = api.http.post(
        path, content=raw, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert "not valid Unicode" in response.json()["errors"][0]


def test_escaped_text_that_is_valid_unicode_is_taken(api: Api) -> None:
    raw = b'{"name": "caf\\u00e9 \\ud83c\\udfac", "parent_id": 1001}'

    response = api.http.post(
        "/api/v1/folders", content=raw, headers={"content-type": "application/json"}
    )

    assert response.status_code == 201
    assert response.json()["name"] == "café 🎬"

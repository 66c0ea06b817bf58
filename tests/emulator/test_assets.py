"""Asset items: batch details, removal from folders, bulk update, revisions, replace."""

from __future__ import annotations

import httpx
from emu_helpers import MIN_PART, Api, add_user, advance_clock, md5


def _revise(api: Api, asset_id: int, filename: str, data: bytes, kind: str) -> int:
    response = api.post(
        f"/api/v1/asset_items/{kind}",
        {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": filename,
                "file_size": len(data),
            },
            "upload_type": "http",
        },
    )
    assert response.status_code == 201, response.text
    api.send_parts(asset_id, data, MIN_PART)
    return int(response.json()["ingest_batch_id"])


def test_batch_of_501_ids_is_422(api: Api) -> None:
    response = api.post("/api/v1/asset_items/batch", {"ids": list(range(1, 502))})
    at_limit = api.post("/api/v1/asset_items/batch", {"ids": list(range(1, 501))})

    assert response.status_code == 422
    assert response.json() == {
        "errors": ["ids: at most 500 asset items per call, got 501"]
    }
    assert at_limit.status_code == 200


def test_batch_gives_the_fields_the_agent_reads(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"hello")
    pending = api.create_asset(1002, "b.txt", 4)

    items = api.post("/api/v1/asset_items/batch", {"ids": [pending, asset_id]}).json()[
        "asset_items"
    ]

    done = next(item for item in items if item["id"] == asset_id)
    waiting = next(item for item in items if item["id"] == pending)
    assert (done["status"], done["size"], done["checksum"]) == (
        "complete",
        5,
        md5(b"hello"),
    )
    assert (done["folder_ids"], done["archived"]) == ([1001], False)
    assert done["updated_at"].endswith("Z")
    assert (waiting["status"], waiting["checksum"], waiting["size"]) == (
        "created",
        None,
        None,
    )


def test_batch_leaves_out_assets_the_user_may_not_view(api: Api) -> None:
    visible = api.upload(1001, "a.txt", b"a")
    hidden = api.upload(1002, "b.txt", b"b")
    viewer = add_user(api.base_url, "viewer", {"1001": ["view"]})

    items = viewer.post("/api/v1/asset_items/batch", {"ids": [visible, hidden]}).json()
    single = viewer.get(f"/api/v1/asset_items/{hidden}")
    viewer.close()

    assert [item["id"] for item in items["asset_items"]] == [visible]
    assert single.status_code == 403


def test_delete_from_some_folders_keeps_the_asset(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.txt", 1, folder_ids=[1001, 1002])

    response = api.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": asset_id, "folder_ids": [1002]}],
    )

    assert response.status_code == 201
    assert api.asset(asset_id)["folder_ids"] == [1001]


def test_delete_from_last_folder_deletes_the_asset_and_its_bytes(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"bytes")
    url = api.download_url({"asset_item_id": asset_id, "source": True})

    api.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": asset_id, "folder_ids": [1001]}],
    )

    gone_record = api.get(f"/api/v1/asset_items/{asset_id}")
    assert gone_record.status_code == 410
    assert gone_record.json() == {
        "errors": [f"asset item {asset_id} has been permanently removed"]
    }
    assert api.get(f"/api/v1/asset_items/{asset_id + 1000}").status_code == 404
    assert api.post("/api/v1/asset_items/batch", {"ids": [asset_id]}).json() == {
        "asset_items": []
    }
    gone = httpx.get(url)
    assert gone.status_code == 404
    assert "<Code>NoSuchKey</Code>" in gone.text


def test_delete_needs_asset_delete_and_membership(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"a")
    viewer = add_user(api.base_url, "viewer", {"1001": ["view", "upload"]})

    denied = viewer.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": asset_id, "folder_ids": [1001]}],
    )
    not_there = api.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": asset_id, "folder_ids": [1002]}],
    )
    viewer.close()

    assert denied.status_code == 403
    assert not_there.status_code == 422
    assert api.asset(asset_id)["folder_ids"] == [1001]


def test_bulk_update_rename_must_keep_the_extension(api: Api) -> None:
    asset_id = api.upload(1001, "clip.mov", b"m")

    wrong = api.post(
        "/api/v1/asset_items/bulk_update",
        {"asset_items": [{"id": asset_id, "name": "clip.mp4"}]},
    )
    right = api.post(
        "/api/v1/asset_items/bulk_update",
        {"asset_items": [{"id": asset_id, "name": "final cut.MOV"}]},
    )

    assert wrong.status_code == 422
    assert "must keep the extension" in wrong.json()["errors"][0]
    assert right.status_code == 201
    assert api.asset(asset_id)["name"] == "final cut.MOV"


def test_bulk_update_checks_vocabularies_and_changes_nothing_on_error(api: Api) -> None:
    first = api.upload(1001, "a.txt", b"a")
    second = api.upload(1001, "b.txt", b"b")

    bad_status = api.post(
        "/api/v1/asset_items/bulk_update",
        {
            "asset_items": [
                {"id": first, "name": "renamed.txt"},
                {"id": second, "usage_status_name": "Sort of done"},
            ]
        },
    )
    bad_subtype = api.post(
        "/api/v1/asset_items/bulk_update",
        {
            "asset_items": [
                {"id": first, "asset_type_name": "Reel", "asset_subtype_name": "Season"}
            ]
        },
    )

    assert bad_status.status_code == bad_subtype.status_code == 422
    assert api.asset(first)["name"] == "a.txt"
    assert api.asset(first)["asset_type"] is None


def test_bulk_update_moves_updated_at(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"a")
    before = api.asset(asset_id)["updated_at"]
    advance_clock(api.base_url, 1)

    api.post(
        "/api/v1/asset_items/bulk_update",
        {
            "asset_items": [
                {
                    "id": asset_id,
                    "custom_metadata_fields": [
                        {"category": "Usage", "label": "Restriction", "value": "none"}
                    ],
                }
            ]
        },
    )

    detail = api.asset(asset_id)
    assert detail["updated_at"] > before
    assert detail["custom_metadata"] == {"usage": {"restriction": "none"}}


def test_revision_flow(api: Api) -> None:
    asset_id = api.upload(1001, "cut v1.mov", b"version one")
    first_detail = api.asset(asset_id)

    ingest_id = _revise(api, asset_id, "cut v2.mov", b"version two!", "revisions")
    during = api.asset(asset_id)
    assert api.multipart(asset_id, "complete").status_code == 204
    after = api.asset(asset_id)
    _revise(api, asset_id, "cut v3.mov", b"version three", "revisions")
    api.multipart(asset_id, "complete")
    revisions = api.get(f"/api/v1/asset_items/{asset_id}/revisions").json()

    assert during["checksum"] == md5(b"version one")
    assert (after["checksum"], after["size"]) == (md5(b"version two!"), 12)
    assert (after["name"], after["file_name"]) == ("cut v2.mov", "cut v2.mov")
    assert after["updated_at"] > first_detail["updated_at"]
    assert revisions[0]["ingest_id"] == ingest_id
    assert len(revisions) == 2
    first_revision = api.download_url(
        {"revision_id": revisions[0]["id"], "source": True}
    )
    current = api.download_url({"asset_item_id": asset_id, "source": True})
    assert httpx.get(first_revision).content == b"version two!"
    assert httpx.get(current).content == b"version three"


def test_revision_needs_a_complete_asset(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.txt", 3)

    response = api.post(
        "/api/v1/asset_items/revisions",
        {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": "a.txt",
                "file_size": 3,
            },
            "upload_type": "http",
        },
    )

    assert response.status_code == 422


def test_replace_flow_keeps_no_revision(api: Api) -> None:
    asset_id = api.upload(1001, "logo.png", b"old logo")
    old_url = api.download_url({"asset_item_id": asset_id, "source": True})

    _revise(api, asset_id, "logo-new.png", b"new logo!", "replace")
    assert api.multipart(asset_id, "complete").status_code == 204

    detail = api.asset(asset_id)
    assert (detail["checksum"], detail["name"]) == (md5(b"new logo!"), "logo-new.png")
    assert api.get(f"/api/v1/asset_items/{asset_id}/revisions").json() == []
    assert httpx.get(old_url).status_code == 404
    new_url = api.download_url({"asset_item_id": asset_id, "source": True})
    assert httpx.get(new_url).content == b"new logo!"


def test_a_new_revision_abandons_an_unfinished_one(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"one")
    _revise(api, asset_id, "a.txt", b"two", "revisions")

    _revise(api, asset_id, "a.txt", b"three", "revisions")
    api.multipart(asset_id, "complete")

    assert api.asset(asset_id)["checksum"] == md5(b"three")
    assert len(api.get(f"/api/v1/asset_items/{asset_id}/revisions").json()) == 1


def test_the_id_of_a_deleted_asset_is_never_given_out_again(api: Api) -> None:
    def create(name: str) -> int:
        item = {"name": name, "folder_ids": [1001], "file_size": 3}
        answer = api.post("/api/v2/uploads/http", {"asset_items": [item]})
        return int(answer.json()["asset_items"][0]["id"])

    first = create("first.txt")
    removed = api.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": first, "folder_ids": [1001]}],
    )
    assert removed.status_code == 201
    second = create("second.txt")

    assert second > first


def test_numbers_past_64_bits_are_invalid_requests_not_server_errors(
    api: Api,
) -> None:
    big = 99999999999999999999999
    asset_id = api.upload(1001, "a.txt", b"hello")

    answers = [
        api.get(f"/api/v1/asset_items/{big}"),
        api.post("/api/v1/asset_items/batch", {"ids": [big]}),
        api.multipart(asset_id, "initiate", {"part_size": big}),
        api.post("/api/v1/folders", {"name": "x", "parent_id": big}),
        api.get("/api/v1/search", params={"query": "*", "page": 2**63}),
    ]
    after = api.get(f"/api/v1/asset_items/{asset_id}")  # the connection still serves

    assert [a.status_code for a in answers] == [422] * 5, [a.text for a in answers]
    assert "out of range" in answers[0].json()["errors"][0]
    assert after.status_code == 200

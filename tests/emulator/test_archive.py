"""Archive and restore: asset state, restores timed by the clock, refused downloads."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from emu_helpers import MIN_PART, Api, add_user, advance_clock, wait_idle
from PIL import Image

from syncagent.emulator.server import EmulatorServer

DATA = b"archived bytes\n" * 10
DAY = 24 * 3600


def archive(api: Api, standard: list[int], deep: list[int]) -> httpx.Response:
    return api.post(
        "/api/v1/asset_items/archives", {"standard": standard, "deep": deep}
    )


def restore(api: Api, asset_ids: list[int], **options: Any) -> httpx.Response:
    return api.post(
        "/api/v1/asset_items/restores", {"asset_item_ids": asset_ids, **options}
    )


def source_download(api: Api, asset_id: int) -> httpx.Response:
    return api.post(
        "/api/v3/downloads",
        {"items": [{"asset_item_id": asset_id, "source": True}], "method": "http"},
    )


def state(api: Api, asset_id: int) -> dict[str, Any]:
    detail = api.asset(asset_id)
    keys = (
        "archive_status",
        "archived",
        "restorable",
        "restore_hours_remaining",
        "restore_status",
        "restored",
        "restoring",
        "downloadable",
    )
    return {key: detail[key] for key in keys}


def archived_asset(api: Api, tier: str = "standard", name: str = "a.txt") -> int:
    asset_id = api.upload(1001, name, DATA)
    tiers = {"standard": [], "deep": [], tier: [asset_id]}
    answer = archive(api, tiers["standard"], tiers["deep"])
    assert answer.status_code == 201, answer.text
    return asset_id


def revise(api: Api, asset_id: int, data: bytes) -> None:
    item = {"asset_item_id": asset_id, "filename": "a.txt", "file_size": len(data)}
    answer = api.post(
        "/api/v1/asset_items/revisions", {"asset_item": item, "upload_type": "http"}
    )
    assert answer.status_code == 201, answer.text
    api.send_parts(asset_id, data, MIN_PART)
    assert api.multipart(asset_id, "complete").status_code == 204


def relogin(api: Api) -> Api:
    """A fresh client after the clock moved past the token's lifetime."""
    api.close()
    return Api(api.base_url)


# -- archive ---------------------------------------------------------------------------


def test_archive_sample_answers_the_ids_and_the_assets_show_archived(api: Api) -> None:
    first = api.upload(1001, "a.txt", DATA)
    second = api.upload(1001, "b.txt", DATA)
    plain = api.upload(1001, "c.txt", DATA)

    answer = archive(api, [], [first, second])
    standard = archive(api, [plain], [])

    assert (answer.status_code, answer.json()) == (
        201,
        {"asset_item_ids": [first, second]},
    )
    assert standard.json() == {"asset_item_ids": [plain]}
    assert state(api, first) == {
        "archive_status": "deep archived",
        "archived": True,
        "restorable": True,
        "restore_hours_remaining": None,
        "restore_status": "not restored",
        "restored": False,
        "restoring": False,
        "downloadable": False,
    }
    assert state(api, plain)["archive_status"] == "archived"
    actions = api.asset(first)["actions"]
    assert (actions["can_download"], actions["can_restore"]) == (False, True)


def test_an_asset_never_archived_keeps_the_reference_defaults(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", DATA)

    assert state(api, asset_id) == {
        "archive_status": "not archived",
        "archived": False,
        "restorable": False,
        "restore_hours_remaining": None,
        "restore_status": "not restored",
        "restored": False,
        "restoring": False,
        "downloadable": True,
    }
    assert api.asset(asset_id)["actions"]["can_restore"] is False


def test_batch_details_and_search_show_the_archive_state(api: Api) -> None:
    asset_id = archived_asset(api)
    restore(api, [asset_id])

    batch = api.post("/api/v1/asset_items/batch", {"ids": [asset_id]}).json()
    found = api.get(
        "/api/v1/search", params={"query": "*", "filters": "folder_id:1001"}
    ).json()

    assert batch["asset_items"][0]["archived"] is True
    [item] = found["asset_items"]
    assert (item["restoring"], item["restore_hours_remaining"]) == (True, 1)


# -- downloads of archived assets ------------------------------------------------------


def test_downloads_of_an_archived_asset_are_422(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", DATA)
    revise(api, asset_id, b"second version")
    revision = api.get(f"/api/v1/asset_items/{asset_id}/revisions").json()[0]["id"]
    archive(api, [asset_id], [])

    source = source_download(api, asset_id)
    of_revision = api.post(
        "/api/v3/downloads",
        {"items": [{"revision_id": revision}], "method": "http"},
    )
    best = api.post(
        "/api/v3/downloads",
        {
            "items": [{"asset_item_id": asset_id}],
            "best_available_proxy": True,
            "method": "http",
        },
    )

    assert [source.status_code, of_revision.status_code, best.status_code] == [422] * 3
    assert source.json() == {
        "errors": [
            f"asset item {asset_id} is archived; restore it first "
            "(POST /api/v1/asset_items/restores)"
        ]
    }


def test_proxy_downloads_of_an_archived_asset_are_422_but_listed(api: Api) -> None:
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(image, format="PNG")
    asset_id = api.upload(1001, "picture.png", image.getvalue())
    wait_idle(api.base_url)
    archive(api, [], [asset_id])

    listing = api.post("/api/v2/asset_items/proxies", {"ids": [asset_id]})
    urls = api.post(
        "/api/v2/asset_items/proxies/download/http",
        {"asset_items": [{"id": asset_id, "proxies": ["small_thumbnail"]}]},
    )
    one = api.post(
        "/api/v3/downloads",
        {
            "items": [{"asset_item_id": asset_id, "proxies": ["small_thumbnail"]}],
            "method": "http",
        },
    )

    listed = listing.json()["asset_items"][0]["proxies"]
    assert "small_thumbnail" in {proxy["type"] for proxy in listed}
    assert (urls.status_code, one.status_code) == (422, 422)
    assert "is archived" in urls.json()["errors"][0]


# -- restores --------------------------------------------------------------------------


def test_restore_sample_then_the_clock_makes_it_ready_and_expire(api: Api) -> None:
    asset_id = archived_asset(api)

    answer = restore(
        api, [asset_id], permanent=False, expedited=False, notify=True, expiry=7
    )

    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"id", "created_by_id", "asset_items"}
    assert isinstance(body["id"], int)
    assert body["asset_items"] == [
        {"id": asset_id, "restore_minutes_remaining": 5, "restoring": True}
    ]
    assert state(api, asset_id) == {
        "archive_status": "archived",
        "archived": True,
        "restorable": False,
        "restore_hours_remaining": 1,
        "restore_status": "restoring",
        "restored": False,
        "restoring": True,
        "downloadable": False,
    }
    waiting = source_download(api, asset_id)
    assert waiting.status_code == 422
    assert "restore is under way, ready in 5 minutes" in waiting.json()["errors"][0]

    # Ready once the clock passes the ready time: archived still, but restored.
    advance_clock(api.base_url, 5 * 60)
    assert state(api, asset_id) == {
        "archive_status": "archived",
        "archived": True,
        "restorable": True,
        "restore_hours_remaining": 7 * 24,
        "restore_status": "restored",
        "restored": True,
        "restoring": False,
        "downloadable": True,
    }
    url = api.download_url({"asset_item_id": asset_id, "source": True})
    assert httpx.get(url).content == DATA

    # Back in archive `expiry` days after it was ready.
    advance_clock(api.base_url, 7 * DAY)
    api = relogin(api)
    assert state(api, asset_id)["restore_status"] == "not restored"
    assert state(api, asset_id)["archived"] is True
    assert source_download(api, asset_id).status_code == 422
    api.close()


def test_the_restore_answer_names_its_user(api: Api) -> None:
    asset_id = archived_asset(api)
    made = httpx.post(
        f"{api.base_url}/_emulator/users",
        json={"name": "archivist", "password": "pw", "permissions": {"1001": "all"}},
    )
    archivist = Api(api.base_url, "archivist", "pw")

    first = restore(archivist, [asset_id]).json()
    second = restore(archivist, [asset_id]).json()
    archivist.close()

    assert first["created_by_id"] == made.json()["id"]
    assert second["id"] == first["id"] + 1


def test_a_permanent_restore_takes_the_asset_out_of_archive(api: Api) -> None:
    asset_id = archived_asset(api)

    answer = restore(api, [asset_id], permanent=True)
    advance_clock(api.base_url, 5 * 60)

    assert answer.json()["asset_items"][0]["restore_minutes_remaining"] == 5
    assert state(api, asset_id) == {
        "archive_status": "not archived",
        "archived": False,
        "restorable": False,
        "restore_hours_remaining": None,
        "restore_status": "not restored",
        "restored": False,
        "restoring": False,
        "downloadable": True,
    }
    url = api.download_url({"asset_item_id": asset_id, "source": True})
    assert httpx.get(url).content == DATA
    again = restore(api, [asset_id])
    assert again.status_code == 422
    assert again.json() == {"errors": [f"asset item {asset_id} is not archived"]}


@pytest.mark.parametrize(
    ("tier", "expedited", "minutes"),
    [
        ("standard", False, 5),
        ("standard", True, 1),
        ("deep", False, 15),
        ("deep", True, 5),
    ],
)
def test_restore_time_depends_on_the_tier_and_expedited(
    api: Api, tier: str, expedited: bool, minutes: int
) -> None:
    asset_id = archived_asset(api, tier)

    answer = restore(api, [asset_id], expedited=expedited)
    advance_clock(api.base_url, minutes * 60 - 2)
    almost = state(api, asset_id)
    advance_clock(api.base_url, 2)

    assert answer.json()["asset_items"][0]["restore_minutes_remaining"] == minutes
    assert almost["restoring"] is True
    assert state(api, asset_id)["restored"] is True


def test_asking_again_keeps_a_restore_under_way(api: Api) -> None:
    asset_id = archived_asset(api)
    restore(api, [asset_id])
    advance_clock(api.base_url, 2 * 60)

    again = restore(api, [asset_id], expedited=True, permanent=True)
    advance_clock(api.base_url, 3 * 60)

    assert again.json()["asset_items"] == [
        {"id": asset_id, "restore_minutes_remaining": 3, "restoring": True}
    ]
    # The first request's options still hold: a temporary restore, now ready.
    assert (state(api, asset_id)["restored"], state(api, asset_id)["archived"]) == (
        True,
        True,
    )


def test_a_restored_asset_is_made_permanent_or_kept_longer_at_once(api: Api) -> None:
    kept = archived_asset(api, name="kept.txt")
    made_permanent = archived_asset(api, name="permanent.txt")
    restore(api, [kept, made_permanent], expiry=1)
    advance_clock(api.base_url, 5 * 60)

    longer = restore(api, [kept], expiry=3)
    permanent = restore(api, [made_permanent], permanent=True)

    assert longer.json()["asset_items"] == [
        {"id": kept, "restore_minutes_remaining": 0, "restoring": False}
    ]
    assert state(api, kept)["restore_hours_remaining"] == 3 * 24
    assert permanent.json()["asset_items"][0]["restoring"] is False
    assert state(api, made_permanent)["archive_status"] == "not archived"


def test_archiving_again_ends_a_restore(api: Api) -> None:
    asset_id = archived_asset(api)
    restore(api, [asset_id])
    advance_clock(api.base_url, 5 * 60)

    archive(api, [], [asset_id])

    assert state(api, asset_id)["archive_status"] == "deep archived"
    assert state(api, asset_id)["restored"] is False
    assert source_download(api, asset_id).status_code == 422


# -- bad requests, unknown assets, permissions -----------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"deep": [1]}, "standard must be an array"),
        ({"standard": [1]}, "deep must be an array"),
        ({"standard": ["1"], "deep": []}, "standard must be an array of integers"),
        ({"standard": [], "deep": []}, "must name 1 to 500 asset items, got 0"),
        ({"standard": [7], "deep": [7]}, "asset item 7 is named in both"),
        ([1, 2], "request body must be a JSON object"),
    ],
)
def test_bad_archive_bodies_are_422(api: Api, body: Any, message: str) -> None:
    answer = api.post("/api/v1/asset_items/archives", body)

    assert answer.status_code == 422
    assert message in answer.json()["errors"][0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"asset_item_ids": None}, "asset_item_ids must be an array"),
        ({"asset_item_ids": []}, "must name 1 to 500 asset items, got 0"),
        ({"permanent": "yes"}, "permanent must be true or false"),
        ({"expedited": 1}, "expedited must be true or false"),
        ({"notify": None}, "notify must be true or false"),
        ({"expiry": 0}, "expiry must be at least 1"),
        ({"expiry": "7"}, "expiry must be an integer"),
        ({"expiry": 3651}, "expiry must be at most 3650 days"),
        ({"permanent": True, "expiry": 7}, "expiry is not valid for permanent"),
    ],
)
def test_bad_restore_bodies_are_422(
    api: Api, options: dict[str, Any], message: str
) -> None:
    asset_id = archived_asset(api)

    answer = api.post(
        "/api/v1/asset_items/restores", {"asset_item_ids": [asset_id], **options}
    )

    assert answer.status_code == 422
    assert message in answer.json()["errors"][0]
    assert state(api, asset_id)["restoring"] is False


def test_an_asset_without_its_file_cannot_be_archived(api: Api) -> None:
    asset_id = api.create_asset(1001, "empty.txt", 3)

    answer = archive(api, [asset_id], [])

    assert answer.status_code == 422
    assert answer.json() == {
        "errors": [f"asset item {asset_id} has no uploaded file to archive"]
    }


def test_unknown_assets_are_404_and_nothing_changes(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", DATA)
    archived = archived_asset(api, name="b.txt")

    archived_answer = archive(api, [asset_id, 999_999], [])
    restore_answer = restore(api, [archived, 999_999])

    assert archived_answer.status_code == 404
    assert archived_answer.json() == {"errors": ["asset item 999999 not found"]}
    assert restore_answer.status_code == 404
    assert state(api, asset_id)["archived"] is False
    assert state(api, archived)["restoring"] is False


def test_archive_and_restore_need_the_upload_permission(api: Api) -> None:
    asset_id = archived_asset(api)
    other = api.upload(1001, "other.txt", DATA)
    reader = add_user(api.base_url, "reader", {"1001": ["view", "download"]})
    editor = add_user(api.base_url, "editor", {"1001": ["view", "upload"]})

    refused = [archive(reader, [other], []), restore(reader, [asset_id])]
    allowed = [archive(editor, [other], []), restore(editor, [asset_id])]
    reader_actions = reader.asset(asset_id)["actions"]
    reader.close()
    editor.close()

    assert [a.status_code for a in refused] == [403, 403]
    assert refused[1].json() == {
        "errors": [f"no upload permission on asset item {asset_id}"]
    }
    assert [a.status_code for a in allowed] == [201, 201]
    assert reader_actions["can_restore"] is False


def test_an_archived_asset_can_still_be_removed(api: Api) -> None:
    asset_id = archived_asset(api)
    restore(api, [asset_id])

    answer = api.post(
        "/api/v1/asset_items/delete_from_folders",
        [{"asset_item_id": asset_id, "folder_ids": [1001]}],
    )

    assert answer.status_code == 201
    assert api.get(f"/api/v1/asset_items/{asset_id}").status_code == 410


# -- data directories made before archives existed -------------------------------------


def test_a_data_directory_without_the_archive_tables_still_works(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "emulator"
    with EmulatorServer(data_dir=data_dir) as first:
        api = Api(first.url)
        asset_id = api.upload(1001, "old.txt", DATA)
        api.close()
    with sqlite3.connect(data_dir / "emulator.db") as db:
        db.execute("DROP TABLE archive_states")
        db.execute("DROP TABLE restore_requests")

    with EmulatorServer(data_dir=data_dir) as second:
        api = Api(second.url)
        before = state(api, asset_id)
        answer = archive(api, [asset_id], [])
        after = state(api, asset_id)
        api.close()

    assert before["archived"] is False
    assert answer.status_code == 201
    assert after["archived"] is True

"""Search: folder listing, filters, keywords, sorting and paging."""

from __future__ import annotations

from typing import Any

from emu_helpers import Api, add_user, advance_clock


def _create_many(api: Api, folder_id: int, names: list[str]) -> list[int]:
    body = {
        "asset_items": [
            {"folder_ids": [folder_id], "name": name, "file_size": 1} for name in names
        ]
    }
    response = api.post("/api/v2/uploads/http", body)
    assert response.status_code == 201
    return [item["id"] for item in response.json()["asset_items"]]


def _search(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/api/v1/search", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _ids(result: dict[str, Any]) -> list[int]:
    return [item["id"] for item in result["asset_items"]]


def test_folder_filter_pages_of_100_list_exactly_the_folder(api: Api) -> None:
    inside = _create_many(api, 1001, [f"clip {n:03d}.mov" for n in range(130)])
    _create_many(api, 1002, ["elsewhere.mov"])

    first = _search(api, query="*", filters="folder_id:1001", per_page_index=1, page=1)
    second = _search(api, query="*", filters="folder_id:1001", per_page_index=1, page=2)

    assert (first["matches"], first["last_page"], len(first["asset_items"])) == (
        130,
        False,
        100,
    )
    assert (second["last_page"], len(second["asset_items"])) == (True, 30)
    assert _ids(first) + _ids(second) == inside


def test_default_page_size_is_50(api: Api) -> None:
    _create_many(api, 1001, [f"f{n}.txt" for n in range(60)])

    page = _search(api, query="*", without_aggregations="true")

    assert len(page["asset_items"]) == 50
    assert "aggregations" not in page
    assert page["last_page"] is False


def test_name_id_and_keyword_terms(api: Api) -> None:
    a, b, c = _create_many(
        api, 1001, ["harbour at dusk.jpg", "harbour.jpg", "crane.jpg"]
    )

    exact = _search(api, query='name:"harbour.jpg"')
    listed = _search(api, query=f"id:[{a}, {c}]")
    word = _search(api, query="harbour")
    excluded = _search(api, query="harbour -dusk")
    either = _search(api, query='crane OR "at dusk"')

    assert _ids(exact) == [b]
    assert _ids(listed) == [a, c]
    assert _ids(word) == [a, b]
    assert _ids(excluded) == [b]
    assert _ids(either) == [a, c]


def test_filters_combine_with_commas(api: Api) -> None:
    a, _b = _create_many(api, 1001, ["a.txt", "b.txt"])
    _create_many(api, 1002, ["a.txt"])

    result = _search(api, query="*", filters='folder_id:1001,name:"a.txt"')

    assert _ids(result) == [a]


def test_updated_at_filter(api: Api) -> None:
    [old] = _create_many(api, 1001, ["old.txt"])
    cutoff = api.asset(old)["updated_at"]
    advance_clock(api.base_url, 5)
    [new] = _create_many(api, 1001, ["new.txt"])

    result = _search(api, query=f"updated_at:>{cutoff}")

    assert _ids(result) == [new]


def test_sorting_by_name_descending(api: Api) -> None:
    _create_many(api, 1001, ["b.txt", "c.txt", "a.txt"])

    result = _search(api, query="*", column="name", sort_direction="desc")

    assert [item["name"] for item in result["asset_items"]] == [
        "c.txt",
        "b.txt",
        "a.txt",
    ]


def test_search_shows_only_viewable_assets(api: Api) -> None:
    [visible] = _create_many(api, 1001, ["mine.txt"])
    _create_many(api, 1002, ["theirs.txt"])
    viewer = add_user(api.base_url, "viewer", {"1001": ["view"]})

    response = viewer.get("/api/v1/search", params={"query": "*"})
    viewer.close()

    assert _ids(response.json()) == [visible]


def test_invalid_search_parameters_are_422(api: Api) -> None:
    cases = [
        {"query": "*", "per_page_index": "2"},
        {"query": "*", "page": "0"},
        {"query": "*", "column": "colour"},
        {"query": "*", "sort_direction": "up"},
        {"query": "mood:happy"},
        {"query": "id:[1, x]"},
        {"filters": "folder_id:1001"},
    ]

    statuses = [api.get("/api/v1/search", params=case).status_code for case in cases]

    assert statuses == [422] * len(cases)

"""The multipart upload rules: part sizes and counts, checksums, URLs, restarts."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from emu_helpers import MIB, MIN_PART, Api, advance_clock, md5

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def test_zero_byte_file_uploads_as_one_empty_part(api: Api) -> None:
    asset_id = api.create_asset(1001, "empty.txt", 0)

    parts = api.send_parts(asset_id, b"", MIN_PART)
    complete = api.multipart(asset_id, "complete")

    assert parts == [b""]
    assert complete.status_code == 204
    detail = api.asset(asset_id)
    assert (detail["status"], detail["size"], detail["checksum"]) == (
        "complete",
        0,
        EMPTY_MD5,
    )
    download = httpx.get(api.download_url({"asset_item_id": asset_id, "source": True}))
    assert (download.status_code, download.content) == (200, b"")


def test_wrong_part_checksum_is_422(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 10)
    api.initiate(asset_id, MIN_PART)
    url = api.part_urls(asset_id, [1])[1]
    httpx.put(url, content=b"0123456789")

    response = api.multipart(
        asset_id,
        "complete_parts",
        {"parts": [{"part_number": 1, "checksum": "f733dff5"}]},
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        f"part 1: checksum f733dff5 is not the MD5 of the uploaded bytes "
        f"({md5(b'0123456789')})"
    ]
    assert api.multipart(asset_id, "complete").status_code == 422


def test_missing_part_is_422_at_complete_parts_and_complete(api: Api) -> None:
    data = os.urandom(MIN_PART + 10)
    asset_id = api.create_asset(1001, "a.bin", len(data))
    assert api.initiate(asset_id, MIN_PART) == 2
    httpx.put(api.part_urls(asset_id, [1])[1], content=data[:MIN_PART])
    api.multipart(asset_id, "complete_parts", {"parts": [{"part_number": 1}]})

    confirm = api.multipart(asset_id, "complete_parts", {"parts": [{"part_number": 2}]})
    complete = api.multipart(asset_id, "complete")

    assert confirm.status_code == 422
    assert confirm.json()["errors"] == ["part 2 was not uploaded"]
    assert complete.status_code == 422
    assert complete.json()["errors"] == ["part 2 was not uploaded"]
    assert api.asset(asset_id)["status"] == "created"


def test_unconfirmed_part_is_422_at_complete(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 3)
    api.initiate(asset_id, MIN_PART)
    httpx.put(api.part_urls(asset_id, [1])[1], content=b"abc")

    response = api.multipart(asset_id, "complete")

    assert response.status_code == 422
    assert response.json()["errors"] == ["part 1 was not confirmed with complete_parts"]


def test_sizes_must_add_up_to_file_size(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 100)
    api.initiate(asset_id, MIN_PART)
    httpx.put(api.part_urls(asset_id, [1])[1], content=b"x" * 60)
    api.multipart(asset_id, "complete_parts", {"parts": [{"part_number": 1}]})

    response = api.multipart(asset_id, "complete")

    assert response.status_code == 422
    assert response.json()["errors"] == [
        "the parts add up to 60 bytes but file_size is 100"
    ]


def test_part_size_below_5_mib_on_a_multipart_file_is_422(api: Api) -> None:
    asset_id = api.create_asset(1001, "big.bin", 12 * MIB)

    small = api.multipart(asset_id, "initiate", {"part_size": 4 * MIB})
    single = api.create_asset(1001, "small.bin", 3 * MIB)
    fits = api.multipart(single, "initiate", {"part_size": 4 * MIB})

    assert small.status_code == 422
    assert "at least 5242880" in small.json()["errors"][0]
    assert fits.status_code == 201
    assert fits.json() == {"part_count": 1}


def test_a_short_middle_part_is_422_at_complete(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", MIN_PART + 5)
    api.initiate(asset_id, MIN_PART)
    urls = api.part_urls(asset_id, [1, 2])
    httpx.put(urls[1], content=b"x" * 5)
    httpx.put(urls[2], content=b"y" * MIN_PART)
    api.multipart(
        asset_id, "complete_parts", {"parts": [{"part_number": 1}, {"part_number": 2}]}
    )

    response = api.multipart(asset_id, "complete")

    assert response.status_code == 422
    assert response.json()["errors"][0].startswith("part 1 is 5 bytes")


def test_at_most_10000_parts(api: Api) -> None:
    asset_id = api.create_asset(1001, "huge.mov", 10_000 * MIN_PART + 1)

    too_many = api.multipart(asset_id, "initiate", {"part_size": MIN_PART})
    enough = api.multipart(asset_id, "initiate", {"part_size": MIN_PART + 1})

    assert too_many.status_code == 422
    assert "would need 10001 parts" in too_many.json()["errors"][0]
    assert enough.json() == {"part_count": 10_000}


def test_part_numbers_must_be_in_range(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 10)
    api.initiate(asset_id, MIN_PART)

    response = api.multipart(asset_id, "retrieve_upload_urls", {"part_numbers": [1, 2]})

    assert response.status_code == 422
    assert response.json()["errors"] == ["part_numbers out of range 1..1: [2]"]


def test_urls_before_initiate_are_422(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 10)

    response = api.multipart(asset_id, "retrieve_upload_urls", {"part_numbers": [1]})

    assert response.status_code == 422


def test_expired_part_url_is_403_s3_xml(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 3)
    api.initiate(asset_id, MIN_PART)
    url = api.part_urls(asset_id, [1])[1]
    advance_clock(api.base_url, 901)

    response = httpx.put(url, content=b"abc")

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in response.text
    assert "Request has expired" in response.text
    fresh = api.part_urls(asset_id, [1])[1]
    assert httpx.put(fresh, content=b"abc").status_code == 200


def test_tampered_part_url_is_403(api: Api) -> None:
    data = os.urandom(MIN_PART + 1)
    asset_id = api.create_asset(1001, "a.bin", len(data))
    api.initiate(asset_id, MIN_PART)
    url = api.part_urls(asset_id, [1])[1]
    parts = urlsplit(url)

    other_part = url.replace(f"{parts.path}", parts.path[:-1] + "2")
    longer_life = url.replace("X-Amz-Expires=900", "X-Amz-Expires=9000")

    for forged in (other_part, longer_life):
        response = httpx.put(forged, content=b"abc")
        assert response.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_part_put_needs_a_content_length(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 3)
    api.initiate(asset_id, MIN_PART)
    url = api.part_urls(asset_id, [1])[1]

    response = httpx.put(url, content=iter([b"a", b"bc"]))

    assert response.status_code == 411
    assert "<Code>MissingContentLength</Code>" in response.text


def test_initiate_again_restarts_the_upload(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.bin", 3)
    api.initiate(asset_id, MIN_PART)
    old_url = api.part_urls(asset_id, [1])[1]
    httpx.put(old_url, content=b"abc")

    api.initiate(asset_id, MIN_PART)
    stale = httpx.put(old_url, content=b"abc")
    premature = api.multipart(asset_id, "complete")

    assert stale.status_code == 404
    assert "<Code>NoSuchUpload</Code>" in stale.text
    assert premature.json()["errors"] == ["part 1 was not uploaded"]
    api.send_parts(asset_id, b"abc", MIN_PART)
    assert api.multipart(asset_id, "complete").status_code == 204


def test_parallel_part_puts_and_repeated_complete(api: Api) -> None:
    data = os.urandom(8 * MIN_PART - 123)
    asset_id = api.create_asset(1001, "clip.mov", len(data))
    count = api.initiate(asset_id, MIN_PART)
    urls = api.part_urls(asset_id, list(range(1, count + 1)))
    parts = {n: data[(n - 1) * MIN_PART : n * MIN_PART] for n in urls}

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: httpx.put(urls[n], content=parts[n]), parts))
    claims = [{"part_number": n, "checksum": md5(p)} for n, p in parts.items()]
    api.multipart(asset_id, "complete_parts", {"parts": claims})
    first = api.multipart(asset_id, "complete")
    again = api.multipart(asset_id, "complete")

    assert [a.status_code for a in answers] == [200] * 8
    assert (first.status_code, again.status_code) == (204, 204)
    assert api.asset(asset_id)["checksum"] == md5(data)


def test_reuploaded_part_replaces_the_first_copy(api: Api) -> None:
    asset_id = api.create_asset(1001, "a.txt", 3)
    api.initiate(asset_id, MIN_PART)
    url = api.part_urls(asset_id, [1])[1]
    httpx.put(url, content=b"bad")
    httpx.put(url, content=b"abc")

    confirm = api.multipart(
        asset_id,
        "complete_parts",
        {"parts": [{"part_number": 1, "checksum": md5(b"abc")}]},
    )

    assert confirm.status_code == 204
    assert api.multipart(asset_id, "complete").status_code == 204
    assert api.asset(asset_id)["checksum"] == md5(b"abc")


def _confirm_and_complete(api: Api, asset_id: int, count: int) -> None:
    claims = {"parts": [{"part_number": n} for n in range(1, count + 1)]}
    assert api.multipart(asset_id, "complete_parts", claims).status_code == 204
    assert api.multipart(asset_id, "complete").status_code == 204


def _source(api: Api, asset_id: int) -> bytes:
    url = api.download_url({"asset_item_id": asset_id, "source": True})
    return httpx.get(url).content


def test_a_part_sent_again_replaces_its_bytes_in_the_joined_file(api: Api) -> None:
    data = os.urandom(2 * MIN_PART + 10)
    asset_id = api.create_asset(1001, "again.bin", len(data))
    count = api.initiate(asset_id, MIN_PART)
    urls = api.part_urls(asset_id, [1, 2, 3])
    httpx.put(urls[2], content=b"x" * MIN_PART)
    for number in (1, 3, 2):
        part = data[(number - 1) * MIN_PART : number * MIN_PART]
        assert httpx.put(urls[number], content=part).status_code == 200

    _confirm_and_complete(api, asset_id, count)

    assert api.asset(asset_id)["checksum"] == md5(data)
    assert _source(api, asset_id) == data


def test_a_single_part_sent_again_is_the_file(api: Api) -> None:
    asset_id = api.create_asset(1001, "once.txt", 3)
    api.initiate(asset_id, MIN_PART)
    url = api.part_urls(asset_id, [1])[1]
    httpx.put(url, content=b"bad")
    httpx.put(url, content=b"abc")

    _confirm_and_complete(api, asset_id, 1)

    assert _source(api, asset_id) == b"abc"


def test_parts_of_other_sizes_than_part_size_join_in_order(api: Api) -> None:
    data = os.urandom(2 * MIN_PART + 10)
    asset_id = api.create_asset(1001, "uneven.bin", len(data))
    count = api.initiate(asset_id, MIN_PART)
    urls = api.part_urls(asset_id, [1, 2, 3])
    cuts = [0, MIN_PART + 5, 2 * MIN_PART + 5, len(data)]
    for number in (3, 2, 1):
        part = data[cuts[number - 1] : cuts[number]]
        assert httpx.put(urls[number], content=part).status_code == 200

    _confirm_and_complete(api, asset_id, count)

    assert api.asset(asset_id)["checksum"] == md5(data)
    assert _source(api, asset_id) == data


def test_initiate_on_a_complete_asset_without_a_revision_is_422(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"abc")

    response = api.multipart(asset_id, "initiate", {"part_size": MIN_PART})

    assert response.status_code == 422
    assert "no upload in progress" in response.json()["errors"][0]


def test_file_size_is_required(api: Api) -> None:
    response = api.post(
        "/api/v2/uploads/http",
        {"asset_items": [{"folder_ids": [1001], "name": "a.txt"}]},
    )

    assert response.status_code == 422
    assert response.json() == {"errors": ["asset_items[0].file_size is required"]}


def test_asset_class_follows_the_extension(api: Api) -> None:
    names = ["a.MOV", "b.wav", "c.jpeg", "d.pdf", "e.docx", "f.zip", "g.xyz"]
    body = {
        "asset_items": [
            {"folder_ids": [1001], "name": name, "file_size": 1} for name in names
        ]
    }

    items = api.post("/api/v2/uploads/http", body).json()["asset_items"]

    assert [item["asset_class"] for item in items] == [
        "video",
        "audio",
        "image",
        "pdf",
        "document",
        "archive",
        "binary",
    ]


def test_aspera_is_refused_with_a_clear_message(api: Api) -> None:
    asset_id = api.upload(1001, "a.txt", b"abc")

    setup = api.post("/api/v1/uploads", {"asset_items": []})
    revision = api.post(
        "/api/v1/asset_items/revisions",
        {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": "a.txt",
                "file_size": 1,
            }
        },
    )

    assert setup.status_code == revision.status_code == 422
    assert "Aspera" in setup.json()["errors"][0]
    assert "Aspera" in revision.json()["errors"][0]

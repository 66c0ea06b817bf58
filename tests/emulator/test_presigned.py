"""Presigned part and download URLs refuse what S3 refuses for them."""

from __future__ import annotations

import base64
import hashlib

import httpx
from emu_helpers import MIB, MIN_PART, Api, md5, multipart_etag

ONE_AUTH = "Only one auth mechanism allowed"


def _part_url(api: Api, data: bytes) -> tuple[int, str]:
    asset_id = api.create_asset(1001, "part.bin", len(data))
    api.initiate(asset_id, MIN_PART)
    return asset_id, api.part_urls(asset_id, [1])[1]


def _confirm(api: Api, asset_id: int, data: bytes) -> httpx.Response:
    claims = [{"part_number": 1, "checksum": md5(data)}]
    return api.multipart(asset_id, "complete_parts", {"parts": claims})


def _content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_part_put_with_an_authorization_header_is_refused(api: Api) -> None:
    asset_id, url = _part_url(api, b"abcd")

    response = httpx.put(
        url, content=b"abcd", headers={"authorization": f"Bearer {api.token}"}
    )

    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text
    assert ONE_AUTH in response.text
    assert _confirm(api, asset_id, b"abcd").status_code == 422


def test_download_with_an_authorization_header_is_refused(api: Api) -> None:
    asset_id = api.upload(1001, "a.bin", b"abcd")
    url = api.download_url({"asset_item_id": asset_id, "source": True})

    response = httpx.get(url, headers={"authorization": f"Bearer {api.token}"})

    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text
    assert httpx.get(url).content == b"abcd"


def test_part_put_with_a_malformed_content_md5_is_invalid_digest(api: Api) -> None:
    asset_id, url = _part_url(api, b"0123456789")
    short = base64.b64encode(b"fifteen bytes!!").decode()

    for header in ("not-base64", short):
        response = httpx.put(
            url, content=b"0123456789", headers={"content-md5": header}
        )

        assert response.status_code == 400
        assert "<Code>InvalidDigest</Code>" in response.text
    assert _confirm(api, asset_id, b"0123456789").status_code == 422


def test_part_put_whose_content_md5_does_not_match_is_bad_digest(api: Api) -> None:
    asset_id, url = _part_url(api, b"0123456789")

    response = httpx.put(
        url, content=b"0123456789", headers={"content-md5": _content_md5(b"other")}
    )

    assert response.status_code == 400
    assert "<Code>BadDigest</Code>" in response.text
    refused = _confirm(api, asset_id, b"0123456789")
    assert refused.status_code == 422
    assert "part 1 was not uploaded" in refused.text


def test_bad_digest_keeps_the_part_sent_before(api: Api) -> None:
    asset_id, url = _part_url(api, b"0123456789")
    assert httpx.put(url, content=b"0123456789").status_code == 200

    response = httpx.put(
        url, content=b"9876543210", headers={"content-md5": _content_md5(b"x")}
    )

    assert response.status_code == 400
    assert _confirm(api, asset_id, b"0123456789").status_code == 204


def test_part_put_with_a_matching_content_md5_is_stored(api: Api) -> None:
    asset_id, url = _part_url(api, b"0123456789")

    response = httpx.put(
        url,
        content=b"0123456789",
        headers={"content-md5": _content_md5(b"0123456789")},
    )

    assert response.status_code == 200
    assert response.headers["etag"] == f'"{md5(b"0123456789")}"'
    assert _confirm(api, asset_id, b"0123456789").status_code == 204


def test_a_multipart_object_has_the_s3_multipart_etag(api: Api) -> None:
    data = bytes(range(256)) * (11 * MIB // 256)
    asset_id = api.upload(1001, "big.bin", data)
    parts = [data[:MIN_PART], data[MIN_PART : 2 * MIN_PART], data[2 * MIN_PART :]]
    url = api.download_url({"asset_item_id": asset_id, "source": True})

    response = httpx.get(url, headers={"range": "bytes=0-0"})

    assert response.headers["etag"] == f'"{multipart_etag(parts)}"'
    assert response.headers["etag"].endswith('-3"')
    assert api.asset(asset_id)["checksum"] == md5(data)

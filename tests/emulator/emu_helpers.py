"""Helpers for the emulator's tests: a thin Compass client and /_emulator/ calls."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

MIB = 1024 * 1024
MIN_PART = 5 * MIB


class Api:
    """A thin Compass client for tests: raw httpx calls plus upload shortcuts."""

    def __init__(self, base_url: str, username: str = "demo", password: str = "demo"):
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)
        response = self.http.post(
            "/api/v1/authenticate", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        self.http.headers["authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json={} if body is None else body, **kwargs)

    def create_asset(self, folder_id: int, name: str, size: int, **extra: Any) -> int:
        item = {"folder_ids": [folder_id], "name": name, "file_size": size, **extra}
        response = self.post("/api/v2/uploads/http", {"asset_items": [item]})
        assert response.status_code == 201, response.text
        return int(response.json()["asset_items"][0]["id"])

    def multipart(self, asset_id: int, action: str, body: Any = None) -> httpx.Response:
        return self.post(f"/api/v2/multipart/asset_items/{asset_id}/{action}", body)

    def initiate(self, asset_id: int, part_size: int) -> int:
        response = self.multipart(asset_id, "initiate", {"part_size": part_size})
        assert response.status_code == 201, response.text
        return int(response.json()["part_count"])

    def part_urls(self, asset_id: int, numbers: list[int]) -> dict[int, str]:
        response = self.multipart(
            asset_id, "retrieve_upload_urls", {"part_numbers": numbers}
        )
        assert response.status_code == 201, response.text
        return {
            item["part_number"]: item["upload_url"]
            for item in response.json()["retrieve_upload_urls"]
        }

    def send_parts(self, asset_id: int, data: bytes, part_size: int) -> list[bytes]:
        """Initiate, PUT every part and confirm them; return the parts."""
        count = self.initiate(asset_id, part_size)
        parts = [data[i * part_size : (i + 1) * part_size] for i in range(count)]
        urls = self.part_urls(asset_id, list(range(1, count + 1)))
        for number, part in enumerate(parts, start=1):
            response = httpx.put(urls[number], content=part)
            assert response.status_code == 200, response.text
        claims = [
            {"part_number": n, "checksum": md5(part)}
            for n, part in enumerate(parts, start=1)
        ]
        response = self.multipart(asset_id, "complete_parts", {"parts": claims})
        assert response.status_code == 204, response.text
        return parts

    def upload(
        self, folder_id: int, name: str, data: bytes, part_size: int = MIN_PART
    ) -> int:
        """Create an asset and upload `data` through the multipart calls."""
        asset_id = self.create_asset(folder_id, name, len(data))
        self.send_parts(asset_id, data, part_size)
        response = self.multipart(asset_id, "complete")
        assert response.status_code == 204, response.text
        return asset_id

    def asset(self, asset_id: int) -> dict[str, Any]:
        response = self.get(f"/api/v1/asset_items/{asset_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def download_url(self, item: dict[str, Any]) -> str:
        response = self.post("/api/v3/downloads", {"items": [item], "method": "http"})
        assert response.status_code == 200, response.text
        return str(response.json()["url"])

    def close(self) -> None:
        self.http.close()


def md5(data: bytes) -> str:
    """MD5 hex of `data`."""
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag (unquoted) of an object uploaded in `parts`."""
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def add_user(base_url: str, name: str, permissions: dict[str, Any]) -> Api:
    """Create a user through /_emulator/users and return a client logged in as it."""
    response = httpx.post(
        f"{base_url}/_emulator/users",
        json={"name": name, "password": "pw", "permissions": permissions},
    )
    assert response.status_code == 201, response.text
    return Api(base_url, name, "pw")


def advance_clock(base_url: str, seconds: float) -> None:
    """Move the emulator's clock forward."""
    response = httpx.post(f"{base_url}/_emulator/clock", json={"advance": seconds})
    assert response.status_code == 200, response.text


def wait_idle(base_url: str) -> None:
    """Wait for the emulator's background proxy generation to finish."""
    response = httpx.get(
        f"{base_url}/_emulator/idle", params={"timeout": 20}, timeout=30
    )
    assert response.json()["idle"] is True

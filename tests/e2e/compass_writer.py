"""Changes made in Compass by someone else: plain httpx calls of the reference.

Pull tests use this to put assets, revisions, renames and removals into the emulator
without the agent's own client, so the agent sees them as a remote user's work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

PART_SIZE = 5 * 1024 * 1024
CREATE_BATCH = 100


class CompassWriter:
    """A second Compass user, as far as the agent can tell."""

    def __init__(self, base_url: str, username: str = "demo", password: str = "demo"):
        self.base_url = base_url
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        self.http = httpx.Client(base_url=base_url, timeout=60, limits=limits)
        answer = self.http.post(
            "/api/v1/authenticate", json={"username": username, "password": password}
        )
        answer.raise_for_status()
        self.http.headers["authorization"] = f"Bearer {answer.json()['access_token']}"

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, path, json=body)
        assert answer.status_code < 300, f"{method} {path}: {answer.text}"
        return answer.json() if answer.content else None

    # -- assets ---------------------------------------------------------------------

    def upload(self, folder_id: int, name: str, data: bytes) -> int:
        """A new asset holding `data`."""
        return self.upload_many(folder_id, [(name, data)])[0]

    def upload_many(
        self, folder_id: int, files: Sequence[tuple[str, bytes]], concurrency: int = 8
    ) -> list[int]:
        """New assets, created in batches and sent on a pool of threads."""
        asset_ids: list[int] = []
        for start in range(0, len(files), CREATE_BATCH):
            batch = files[start : start + CREATE_BATCH]
            items = [
                {"name": name, "folder_ids": [folder_id], "file_size": len(data)}
                for name, data in batch
            ]
            created = self.call("POST", "/api/v2/uploads/http", {"asset_items": items})
            asset_ids += [int(item["id"]) for item in created["asset_items"]]
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(self._send, asset_ids, [data for _, data in files]))
        return asset_ids

    def revise(self, asset_id: int, name: str, data: bytes) -> None:
        """A new revision of an asset (which also takes `name`, as in Compass)."""
        body = {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": name,
                "file_size": len(data),
            },
            "upload_type": "http",
        }
        self.call("POST", "/api/v1/asset_items/revisions", body)
        self._send(asset_id, data)

    def revise_many(
        self, changes: Sequence[tuple[int, str, bytes]], concurrency: int = 8
    ) -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda change: self.revise(*change), changes))

    def rename(self, renames: dict[int, str]) -> None:
        items = [{"id": asset_id, "name": name} for asset_id, name in renames.items()]
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            self.call("POST", "/api/v1/asset_items/bulk_update", {"asset_items": chunk})

    def remove(self, folder_id: int, asset_ids: Sequence[int]) -> None:
        body = [{"asset_item_id": a, "folder_ids": [folder_id]} for a in asset_ids]
        self.call("POST", "/api/v1/asset_items/delete_from_folders", body)

    def make_folder(self, name: str, parent_id: int) -> int:
        created = self.call(
            "POST", "/api/v1/folders", {"name": name, "parent_id": parent_id}
        )
        return int(created["id"])

    def asset(self, asset_id: int) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/v1/asset_items/{asset_id}"))

    def revisions(self, asset_id: int) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/api/v1/asset_items/{asset_id}/revisions"))

    def _send(self, asset_id: int, data: bytes) -> None:
        base = f"/api/v2/multipart/asset_items/{asset_id}"
        count = self.call("POST", f"{base}/initiate", {"part_size": PART_SIZE})[
            "part_count"
        ]
        numbers = list(range(1, count + 1))
        answer = self.call(
            "POST", f"{base}/retrieve_upload_urls", {"part_numbers": numbers}
        )
        urls = {
            u["part_number"]: u["upload_url"] for u in answer["retrieve_upload_urls"]
        }
        parts = []
        for number in numbers:
            part = data[(number - 1) * PART_SIZE : number * PART_SIZE]
            # A presigned URL is its own authorization: S3 refuses a second one.
            put = self.http.build_request("PUT", urls[number], content=part)
            del put.headers["authorization"]
            self.http.send(put).raise_for_status()
            parts.append({"part_number": number, "checksum": md5(part)})
        self.call("POST", f"{base}/complete_parts", {"parts": parts})
        self.call("POST", f"{base}/complete", {})

    # -- the emulator's test endpoints ------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_emulator/stats"))

    def reset_stats(self) -> None:
        self.http.delete("/_emulator/stats").raise_for_status()

    def set_faults(self, spec: str) -> None:
        self.call("PUT", "/_emulator/faults", {"spec": spec})

    def clear_faults(self) -> None:
        self.http.delete("/_emulator/faults").raise_for_status()

    def wait_idle(self) -> None:
        """Wait until the emulator has made every pending proxy."""
        answer = self.http.get("/_emulator/idle", params={"timeout": 60}, timeout=90)
        assert answer.json()["idle"] is True


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()

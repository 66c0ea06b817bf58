"""The Compass API client: one method per endpoint the agent uses, typed results.

The client never touches the ledger or the local tree. Presigned part and download URLs
are used here too, with no bearer token, since they belong to the upload and download
flows of the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from xml.etree import ElementTree

import httpx

from syncagent.compass import wire
from syncagent.compass.errors import (
    IntegrityError,
    InvalidRequest,
    TransientError,
    UrlExpired,
)
from syncagent.compass.models import (
    AssetItem,
    FolderListing,
    NewAsset,
    Proxy,
    SearchPage,
)
from syncagent.compass.retry import RetryPolicy
from syncagent.compass.sender import Sender, network_client, proxy_in_environment
from syncagent.compass.transport import (
    Session,
    error_messages,
    redact_url,
    rejection_for,
)

BATCH_LIMIT = 500
SEARCH_PAGE_SIZE = 100  # per_page_index=1
DOWNLOAD_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class AssetUpdate:
    """Fields to change on one asset item through bulk update."""

    asset_id: int
    name: str | None = None
    custom_metadata_fields: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Download:
    """An open download: where it starts, how long the whole file is, its bytes."""

    offset: int
    total_size: int | None
    chunks: Iterator[bytes]


def _s3_error(response: httpx.Response) -> str:
    """The Code and Message of an S3-style XML error body, or a short excerpt."""
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        return error_messages(response)
    code = root.findtext("Code") or ""
    message = root.findtext("Message") or ""
    return f"{code}: {message}".strip(": ") or response.reason_phrase


class CompassClient:
    """Typed access to one Compass environment for one user."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        concurrency: int = 4,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        verify: bool | str = True,
        env_proxies: bool = True,
    ) -> None:
        pool = concurrency + 4
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        timeouts = httpx.Timeout(timeout, connect=min(timeout, 15.0))
        # Downloads stream their bodies, which the sender does not do; with a proxy
        # set, the sender's requests go through that client too. The embedded
        # emulator, on this machine's loopback, is never behind a proxy.
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._make_http = partial(
            network_client,
            verify=verify,
            limits=limits,
            timeout=timeouts,
            env_proxies=env_proxies,
        )
        through = self.http if env_proxies and proxy_in_environment() else None
        self.sender = Sender.for_network(
            through, verify=verify, limits=limits, timeout=timeouts
        )
        self.session = Session(
            base_url, username, password, http=self.sender, policy=policy
        )

    def __enter__(self) -> CompassClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pools."""
        self.sender.close()
        with self._http_lock:
            if self._http is not None:
                self._http.close()

    @property
    def http(self) -> httpx.Client:
        """The httpx client of streamed downloads (and of every request when the
        environment names a proxy). Made on first use: a run that only uploads
        never needs it, and its TLS context is a noticeable part of a start."""
        with self._http_lock:
            if self._http is None:
                self._http = self._make_http()
            return self._http

    @property
    def base_url(self) -> str:
        """The environment's base URL."""
        return self.session.base_url

    def authenticate(self) -> None:
        """Log in now, so bad credentials fail before any work starts."""
        self.session.token()

    # -- folders --------------------------------------------------------------

    def list_subfolders(self, folder_id: int) -> FolderListing:
        """A folder, its permissions and its direct subfolders."""
        data = self.session.call("GET", f"/api/v1/folders/{folder_id}/subfolders")
        return wire.folder_listing(data)

    def create_folder(self, name: str, parent_id: int) -> int:
        """Create a folder under `parent_id` and return its ID.

        Raises InvalidRequest when the name is taken, AmbiguousResult when the answer
        was lost (list the parent to find out).
        """
        data = self.session.call(
            "POST",
            "/api/v1/folders",
            body={"name": name, "parent_id": parent_id},
            idempotent=False,
        )
        try:
            return int(data["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TransientError("folder creation answered with no id") from exc

    # -- uploads --------------------------------------------------------------

    def create_assets(self, items: Sequence[NewAsset]) -> list[AssetItem]:
        """Create asset items for HTTP upload, in the order given.

        Not idempotent: AmbiguousResult means some may exist; look before retrying.
        """
        body = {"asset_items": [_new_asset_body(item) for item in items]}
        data = self.session.call(
            "POST", "/api/v2/uploads/http", body=body, idempotent=False
        )
        created = wire.asset_items(data)
        if len(created) != len(items):
            raise TransientError(
                f"asked to create {len(items)} assets, Compass answered {len(created)}"
            )
        return created

    def create_revision(self, asset_id: int, filename: str, file_size: int) -> None:
        """Open a new revision of an asset for HTTP upload."""
        body = {
            "asset_item": {
                "asset_item_id": asset_id,
                "filename": filename,
                "file_size": file_size,
            },
            "upload_type": "http",
        }
        self.session.call("POST", "/api/v1/asset_items/revisions", body=body)

    def initiate_upload(self, asset_id: int, part_size: int) -> int:
        """Start a multipart upload and return its part count."""
        data = self.session.call(
            "POST",
            f"/api/v2/multipart/asset_items/{asset_id}/initiate",
            body={"part_size": part_size},
        )
        try:
            return int(data["part_count"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TransientError("initiate answered with no part_count") from exc

    def retrieve_upload_urls(
        self, asset_id: int, part_numbers: Sequence[int]
    ) -> dict[int, str]:
        """Presigned URLs for the given part numbers."""
        data = self.session.call(
            "POST",
            f"/api/v2/multipart/asset_items/{asset_id}/retrieve_upload_urls",
            body={"part_numbers": list(part_numbers)},
        )
        try:
            return {
                int(item["part_number"]): str(item["upload_url"])
                for item in data["retrieve_upload_urls"]
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise TransientError("retrieve_upload_urls answer is unreadable") from exc

    def upload_part(self, url: str, data: bytes, md5_hex: str) -> None:
        """PUT one part to its presigned URL and check the ETag against `md5_hex`.

        Raises UrlExpired when the URL was refused, IntegrityError when the server
        received other bytes than were sent.
        """

        def send() -> httpx.Response:
            # Slices of the buffer, so no layer below copies the whole part at once.
            return self.sender.send(
                "PUT",
                url,
                content=_slices(data),
                headers={"content-length": str(len(data))},
            )

        response = self.session.with_retries("PUT", redact_url(url), send)
        if response.status_code == 403:
            raise UrlExpired(f"part URL refused: {_s3_error(response)}", status=403)
        if response.status_code >= 400:
            raise rejection_for(response.status_code, _s3_error(response))
        etag = response.headers.get("etag", "").strip().strip('"').lower()
        if etag != md5_hex:
            raise IntegrityError(
                f"part arrived with MD5 {etag or 'missing'}, sent {md5_hex}"
            )

    def complete_parts(self, asset_id: int, parts: Sequence[tuple[int, str]]) -> None:
        """Confirm uploaded parts with their MD5 checksums."""
        body = {
            "parts": [
                {"part_number": number, "checksum": md5_hex}
                for number, md5_hex in parts
            ]
        }
        self.session.call(
            "POST",
            f"/api/v2/multipart/asset_items/{asset_id}/complete_parts",
            body=body,
        )

    def complete_upload(self, asset_id: int) -> None:
        """Signal that every part is uploaded.

        Not idempotent: after AmbiguousResult or InvalidRequest, read the asset to see
        whether it completed.
        """
        self.session.call(
            "POST",
            f"/api/v2/multipart/asset_items/{asset_id}/complete",
            body={},
            idempotent=False,
        )

    # -- assets ---------------------------------------------------------------

    def get_asset(self, asset_id: int) -> AssetItem:
        """Details of one asset item."""
        return wire.asset_item(
            self.session.call("GET", f"/api/v1/asset_items/{asset_id}")
        )

    def get_assets(self, asset_ids: Sequence[int]) -> list[AssetItem]:
        """Details of many asset items, asked in batches of at most 500."""
        found: list[AssetItem] = []
        for start in range(0, len(asset_ids), BATCH_LIMIT):
            chunk = list(asset_ids[start : start + BATCH_LIMIT])
            data = self.session.call(
                "POST",
                "/api/v1/asset_items/batch",
                body={"ids": chunk, "skip_actions": True},
            )
            found.extend(wire.asset_items(data))
        return found

    def delete_from_folders(self, removals: Mapping[int, Sequence[int]]) -> None:
        """Remove assets from folders; an asset left in no folder is deleted."""
        body = [
            {"asset_item_id": asset_id, "folder_ids": list(folder_ids)}
            for asset_id, folder_ids in removals.items()
        ]
        self.session.call("POST", "/api/v1/asset_items/delete_from_folders", body=body)

    def update_assets(self, updates: Sequence[AssetUpdate]) -> None:
        """Rename assets or set their custom metadata (bulk update, 500 at a time)."""
        for start in range(0, len(updates), BATCH_LIMIT):
            items = [_update_body(u) for u in updates[start : start + BATCH_LIMIT]]
            self.session.call(
                "POST", "/api/v1/asset_items/bulk_update", body={"asset_items": items}
            )

    def vocabularies(self) -> dict[str, Any]:
        """The vocabularies custom metadata values are checked against."""
        data = self.session.call("GET", "/api/v1/vocabularies")
        if not isinstance(data, dict):
            raise TransientError("vocabularies answer is not an object")
        return data

    def restore_assets(self, asset_ids: Sequence[int]) -> None:
        """Ask for archived assets to be restored permanently."""
        body = {"asset_item_ids": list(asset_ids), "permanent": True}
        self.session.call("POST", "/api/v1/asset_items/restores", body=body)

    # -- search ---------------------------------------------------------------

    def search(
        self, query: str = "*", filters: str | None = None, page: int = 1
    ) -> SearchPage:
        """One page of 100 search results, oldest upload first."""
        params: dict[str, Any] = {
            "query": query,
            "page": page,
            "per_page_index": 1,
            "without_aggregations": "true",
            "column": "upload_date",
            "sort_direction": "asc",
        }
        if filters:
            params["filters"] = filters
        return wire.search_page(
            self.session.call("GET", "/api/v1/search", params=params)
        )

    def list_folder_assets(self, folder_id: int) -> Iterator[AssetItem]:
        """Every asset item directly in a folder, through every search page."""
        page = 1
        while True:
            result = self.search(filters=f"folder_id:{folder_id}", page=page)
            yield from result.assets
            pages_needed = -(-result.matches // SEARCH_PAGE_SIZE)
            if result.last_page or not result.assets or page >= pages_needed:
                return
            page += 1

    # -- proxies and downloads ------------------------------------------------

    def list_proxies(self, asset_ids: Sequence[int]) -> dict[int, list[Proxy]]:
        """The proxies that exist for each asset."""
        found: dict[int, list[Proxy]] = {}
        for start in range(0, len(asset_ids), BATCH_LIMIT):
            chunk = list(asset_ids[start : start + BATCH_LIMIT])
            data = self.session.call(
                "POST", "/api/v2/asset_items/proxies", body={"asset_items": chunk}
            )
            found.update(wire.proxies(data))
        return found

    def proxy_download_urls(
        self, asset_id: int, types: Sequence[str]
    ) -> dict[str, str]:
        """Signed HTTP URLs for the given proxy types of one asset."""
        body = {"asset_items": [{"id": asset_id, "proxies": list(types)}]}
        data = self.session.call(
            "POST", "/api/v2/asset_items/proxies/download/http", body=body
        )
        try:
            entry = next(
                item for item in data["asset_items"] if int(item["id"]) == asset_id
            )
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            raise TransientError("proxy download answer is unreadable") from exc
        return {t: str(entry[t]) for t in types if entry.get(t)}

    def download_url(
        self, *, asset_id: int | None = None, revision_id: int | None = None
    ) -> str:
        """A signed HTTP URL for the source of an asset, or of one of its revisions."""
        item: dict[str, Any] = {"source": True}
        if revision_id is not None:
            item["revision_id"] = revision_id
        elif asset_id is not None:
            item["asset_item_id"] = asset_id
        else:
            raise InvalidRequest("download_url needs an asset_id or a revision_id")
        data = self.session.call(
            "POST", "/api/v3/downloads", body={"items": [item], "method": "http"}
        )
        try:
            return str(data["url"])
        except (KeyError, TypeError) as exc:
            raise TransientError("download answer has no url") from exc

    @contextmanager
    def open_download(self, url: str, offset: int = 0) -> Iterator[Download]:
        """Open a presigned download, from `offset` when the server honours Range.

        `Download.offset` says where the bytes really start: 0 when the server sent
        the whole file. Errors while reading raise TransientError.
        """
        headers = {"range": f"bytes={offset}-"} if offset else {}
        request = self.http.build_request("GET", url, headers=headers)
        send = partial(self.http.send, request, stream=True)
        response = self.session.with_retries("GET", redact_url(url), send)
        try:
            if response.status_code == 403:
                response.read()
                raise UrlExpired(
                    f"download URL refused: {_s3_error(response)}", status=403
                )
            if response.status_code == 416:
                raise TransientError("download range not satisfiable", status=416)
            if response.status_code >= 400:
                response.read()
                raise rejection_for(response.status_code, _s3_error(response))
            start, total = _content_span(response, offset)
            yield Download(start, total, _guarded_chunks(response))
        finally:
            response.close()


def _slices(data: bytes, size: int = 1024 * 1024) -> Iterator[bytes]:
    """A buffer as memoryview slices of at most `size` bytes (one, empty, if empty)."""
    view = memoryview(data)
    if not data:
        yield b""
    for start in range(0, len(data), size):
        yield view[start : start + size]  # type: ignore[misc]


def _content_span(
    response: httpx.Response, asked_offset: int
) -> tuple[int, int | None]:
    """Where the body starts and the full file size, from the status and headers."""
    if response.status_code == 206:
        content_range = response.headers.get("content-range", "")
        try:
            span, total = content_range.split(" ", 1)[1].split("/")
            return int(span.split("-")[0]), int(total) if total != "*" else None
        except (IndexError, ValueError):
            return asked_offset, None
    length = response.headers.get("content-length")
    return 0, int(length) if length and length.isdigit() else None


def _guarded_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body in chunks, with transport errors turned into TransientError."""
    try:
        yield from response.iter_bytes(DOWNLOAD_CHUNK)
    except httpx.TransportError as exc:
        raise TransientError(f"download interrupted: {exc!r}") from exc


def _new_asset_body(item: NewAsset) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": item.name,
        "folder_ids": list(item.folder_ids),
        "file_size": item.file_size,
    }
    if item.custom_metadata_fields:
        body["custom_metadata_fields"] = item.custom_metadata_fields
    if item.titles:
        body["titles"] = item.titles
    return body


def _update_body(update: AssetUpdate) -> dict[str, Any]:
    body: dict[str, Any] = {"id": update.asset_id}
    if update.name is not None:
        body["name"] = update.name
    if update.custom_metadata_fields:
        body["custom_metadata_fields"] = update.custom_metadata_fields
    return body

"""Bring a mapping's wanted proxies into its mirror (`.proxies/<asset path>/`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from syncagent.compass import CompassClient
from syncagent.engine.download import Downloader, Expected
from syncagent.engine.local_view import scan_proxies
from syncagent.engine.names import PROXY_DIR
from syncagent.engine.proxy_plan import ProxyFetch, ProxyPlan, plan_proxies
from syncagent.engine.pull_ops import AssetKey, parent_of
from syncagent.engine.pull_report import PullReport
from syncagent.engine.remote_tree import RemoteAsset
from syncagent.engine.safe_root import SafeRoot
from syncagent.ledger import Ledger
from syncagent.ledger.records import ProxyFileRecord
from syncagent.logs import in_context

log = logging.getLogger(__name__)

Guard = Callable[..., object]


class ProxyPuller:
    """Fetches, moves and drops the proxies of one mapping's mirror."""

    def __init__(
        self,
        *,
        root: SafeRoot,
        client: CompassClient,
        ledger: Ledger,
        mapping_id: int,
        downloader: Downloader,
        report: PullReport,
        wanted: Sequence[str],
    ) -> None:
        self.root = root
        self.client = client
        self.ledger = ledger
        self.mapping_id = mapping_id
        self.downloader = downloader
        self.report = report
        self.wanted = list(wanted)

    def plan(self, placements: Mapping[AssetKey, tuple[str, RemoteAsset]]) -> ProxyPlan:
        """Ask Compass which proxies exist and compare them with the mirror."""
        asset_ids = sorted({asset_id for _, asset_id in placements})
        available = self.client.list_proxies(asset_ids) if self.wanted else {}
        return plan_proxies(
            placements,
            available,
            self.wanted,
            self.ledger.proxy_files(self.mapping_id),
            scan_proxies(self.root.root),
        )

    def apply(self, plan: ProxyPlan, pool: ThreadPoolExecutor, guard: Guard) -> None:
        """Carry out a proxy plan; `guard` records a path's failure and goes on."""
        for record, target in plan.moves:
            guard(target, self._move, record, target)
        for record in plan.drops:
            guard(record.rel_path, self._drop, record)
        by_asset: dict[AssetKey, list[ProxyFetch]] = {}
        for fetch in plan.fetches:
            key = (fetch.asset.folder_id, fetch.asset.asset_id)
            by_asset.setdefault(key, []).append(fetch)
        futures = [
            pool.submit(
                in_context(guard), fetches[0].rel_path, self._fetch_all, fetches
            )
            for fetches in by_asset.values()
        ]
        for future in futures:
            future.result()

    def _fetch_all(self, fetches: list[ProxyFetch]) -> None:
        """Every wanted proxy of one asset: one call for the URLs, then each file."""
        asset = fetches[0].asset
        types = [f.proxy_type for f in fetches]
        urls = self.client.proxy_download_urls(asset.asset_id, types)
        for fetch in fetches:
            first_url = urls.get(fetch.proxy_type)
            if first_url is None:
                continue
            self._fetch(fetch, first_url)

    def _fetch(self, fetch: ProxyFetch, first_url: str) -> None:
        urls = iter([first_url])

        def url_source() -> str:
            fresh = next(urls, None)
            if fresh is not None:
                return fresh
            asked = self.client.proxy_download_urls(
                fetch.asset.asset_id, [fetch.proxy_type]
            )
            return asked[fetch.proxy_type]

        rel_dir, _, name = fetch.rel_path.rpartition("/")
        key = f"{fetch.asset.asset_id}-{fetch.proxy_type}"
        with self.downloader.fetched(
            rel_dir,
            key,
            url_source,
            Expected(None, fetch.size),
            subject=fetch.rel_path,
            count_received=self._received,
        ) as got:
            placed = got.place_over(name)
        self.ledger.put_proxy_file(self.mapping_id, fetch.record(placed.size))
        old = fetch.replaces
        if old is not None and old.rel_path != fetch.rel_path:
            self._remove_file(old.rel_path)
        self.report.count("proxies")
        log.info("%s: proxy placed, %d bytes", fetch.rel_path, placed.size)

    def _received(self, count: int) -> None:
        """Bytes a proxy download brought, counted whether or not it then failed."""
        self.report.count("bytes_received", count)

    def _move(self, record: ProxyFileRecord, target: str) -> None:
        self.root.move_file(record.rel_path, target)
        self._prune(parent_of(record.rel_path))
        moved = ProxyFileRecord(
            record.folder_id,
            record.asset_id,
            record.proxy_type,
            target,
            record.source_checksum,
            record.size,
        )
        self.ledger.put_proxy_file(self.mapping_id, moved)

    def _drop(self, record: ProxyFileRecord) -> None:
        self._remove_file(record.rel_path)
        self.ledger.remove_proxy_file(self.mapping_id, record)
        self.report.count("proxies_removed")

    def _remove_file(self, rel_path: str) -> None:
        with (
            contextlib.suppress(FileNotFoundError),
            self.root.parent_of(rel_path) as (
                directory,
                name,
            ),
        ):
            if directory.regular(name) is not None:
                directory.unlink(name)
        self._prune(parent_of(rel_path))

    def _prune(self, rel_dir: str) -> None:
        """Remove emptied proxy folders up to (not including) `.proxies`."""
        while rel_dir.startswith(PROXY_DIR + "/"):
            with contextlib.suppress(FileNotFoundError):
                if not self.root.remove_empty_dir(rel_dir):
                    return
            rel_dir = parent_of(rel_dir)

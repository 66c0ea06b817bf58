"""Plan the proxies of a mirror: which to fetch, move along with a rename, or drop.

Pure, like the pull planner. A proxy is fetched once per version of its asset's source
(the ledger keeps the source checksum it was made from), moved when the asset's local
path changes, and dropped when the asset or the proxy type is no longer wanted.
Proxies are derived data, so a dropped one is deleted rather than trashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from syncagent.compass import Proxy
from syncagent.engine.layout import proxy_rel_path
from syncagent.engine.pull_ops import AssetKey
from syncagent.engine.remote_tree import RemoteAsset
from syncagent.ledger.records import ProxyFileRecord


@dataclass(frozen=True)
class ProxyFetch:
    """Download one proxy of an asset to `rel_path`; `replaces` is its old record."""

    asset: RemoteAsset
    proxy_type: str
    rel_path: str
    size: int | None
    replaces: ProxyFileRecord | None = None

    def record(self, size: int) -> ProxyFileRecord:
        """The ledger record once the proxy is placed."""
        assert self.asset.checksum is not None
        return ProxyFileRecord(
            folder_id=self.asset.folder_id,
            asset_id=self.asset.asset_id,
            proxy_type=self.proxy_type,
            rel_path=self.rel_path,
            source_checksum=self.asset.checksum,
            size=size,
        )


@dataclass
class ProxyPlan:
    """The proxy work of one pull."""

    fetches: list[ProxyFetch] = field(default_factory=list)
    moves: list[tuple[ProxyFileRecord, str]] = field(default_factory=list)
    drops: list[ProxyFileRecord] = field(default_factory=list)
    unchanged: int = 0


def plan_proxies(
    placements: Mapping[AssetKey, tuple[str, RemoteAsset]],
    available: Mapping[int, Sequence[Proxy]],
    wanted: Sequence[str],
    placed: Sequence[ProxyFileRecord],
    present: Mapping[str, int],
) -> ProxyPlan:
    """Compare the wanted proxies of each placed asset with those in the mirror.

    `available` is what Compass has per asset ID, `placed` what the ledger recorded,
    `present` the proxy files on disk with their sizes.
    """
    plan = ProxyPlan()
    records = {(r.folder_id, r.asset_id, r.proxy_type): r for r in placed}
    kept: set[tuple[int, int, str]] = set()
    for (folder_id, asset_id), (rel_path, asset) in sorted(placements.items()):
        offered = {p.type: p for p in available.get(asset_id, ())}
        for proxy_type in wanted:
            proxy = offered.get(proxy_type)
            if proxy is None:
                continue
            key = (folder_id, asset_id, proxy_type)
            kept.add(key)
            target = proxy_rel_path(rel_path, proxy_type)
            fetch = ProxyFetch(asset, proxy_type, target, proxy.size, records.get(key))
            _plan_one(plan, fetch, present)
    plan.drops = [r for k, r in sorted(records.items()) if k not in kept]
    return plan


def _plan_one(plan: ProxyPlan, fetch: ProxyFetch, present: Mapping[str, int]) -> None:
    record = fetch.replaces
    if record is None or record.source_checksum != fetch.asset.checksum:
        plan.fetches.append(fetch)
    elif present.get(record.rel_path) != record.size:
        plan.fetches.append(fetch)  # deleted or damaged on disk: fetch it again
    elif record.rel_path != fetch.rel_path:
        plan.moves.append((record, fetch.rel_path))
    else:
        plan.unchanged += 1

"""Archive state of asset items: tiers, restores timed by the clock, what they allow.

Sending an asset to archive takes effect at once. A restore is ready after a delay
that depends on the tier and on `expedited` (RESTORE_DELAY_SECONDS); tests move the
emulator's clock forward (POST /_emulator/clock) to get there. Once ready, a permanent
restore puts the asset back in standard storage ("not archived"); a temporary one
leaves it archived but downloadable until `expiry` days after it was ready, when it
is back in archive. The state is worked out from the stored times whenever it is
read, so nothing runs in the background.

The archive state belongs to the asset item: a revision uploaded to an archived asset
is archived with it. URLs signed before an asset was archived stay valid until they
expire, as they are checked by signature alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from syncagent.emulator.db import ArchiveState, Record, RestoreRequest, core
from syncagent.emulator.web import ApiError

TIERS = ("standard", "deep")
ARCHIVE_STATUS = {"standard": "archived", "deep": "deep archived"}
"""The `archive_status` of an archived asset by tier; others are "not archived"."""

RESTORE_DELAY_SECONDS = {
    ("standard", False): 5 * 60,
    ("standard", True): 60,
    ("deep", False): 15 * 60,
    ("deep", True): 5 * 60,
}
"""How long a restore takes, by (tier, expedited): minutes, not Glacier's hours, so
that the embedded emulator stays usable by hand."""

DAY_MS = 24 * 3600 * 1000

_STATES = select(ArchiveState.__table__).where(
    ArchiveState.asset_id.in_(bindparam("asset_ids", expanding=True))
)


@dataclass(frozen=True)
class ArchiveView:
    """An asset's archive state at one instant; the default is "not archived"."""

    tier: str | None = None
    restoring: bool = False
    restored: bool = False
    ready_in_ms: int | None = None
    """While restoring: how long until the file can be downloaded."""
    expires_in_ms: int | None = None
    """While restored for a time: how long until it is back in archive."""

    @property
    def archived(self) -> bool:
        """Whether the asset is in an archive tier (restored for a time or not)."""
        return self.tier is not None

    @property
    def downloadable(self) -> bool:
        """Whether its file can be downloaded: not archived, or restored."""
        return not self.archived or self.restored

    @property
    def restorable(self) -> bool:
        """Whether a restore may be asked: archived and no restore under way."""
        return self.archived and not self.restoring

    def minutes_remaining(self) -> int:
        """Whole minutes (rounded up) until a restore under way is ready, else 0."""
        return math.ceil((self.ready_in_ms or 0) / 60_000)

    def detail_fields(self) -> dict[str, Any]:
        """The archive fields of an asset's details."""
        remaining = self.ready_in_ms if self.restoring else self.expires_in_ms
        status = (
            "restoring" if self.restoring else "restored" if self.restored else None
        )
        return {
            "archive_status": ARCHIVE_STATUS.get(self.tier or "", "not archived"),
            "archived": self.archived,
            "restorable": self.restorable,
            "restore_hours_remaining": (
                None if remaining is None else math.ceil(remaining / 3_600_000)
            ),
            "restore_status": status or "not restored",
            "restored": self.restored,
            "restoring": self.restoring,
        }


NOT_ARCHIVED = ArchiveView()


def archive_view(state: ArchiveState | Record | None, now_ms: int) -> ArchiveView:
    """Work out an asset's archive state at `now_ms` from its stored row."""
    if state is None:
        return NOT_ARCHIVED
    ready_at = state.restore_ready_at
    if ready_at is None:
        return ArchiveView(state.tier)
    if now_ms < ready_at:
        return ArchiveView(state.tier, restoring=True, ready_in_ms=ready_at - now_ms)
    if state.restore_permanent:
        return NOT_ARCHIVED
    expires_at = state.restore_expires_at
    if expires_at is not None and now_ms < expires_at:
        return ArchiveView(state.tier, restored=True, expires_in_ms=expires_at - now_ms)
    return ArchiveView(state.tier)


def archive_views(
    db: Session | Connection, asset_ids: Sequence[int], now_ms: int
) -> dict[int, ArchiveView]:
    """The archive state of each asset that has one (others are not archived)."""
    if not asset_ids:
        return {}
    rows = core(db).execute(_STATES, {"asset_ids": list(asset_ids)})
    return {row.asset_id: archive_view(row, now_ms) for row in rows}


def require_retrievable(db: Session | Connection, asset_id: int, now_ms: int) -> None:
    """Raise the 422 when an asset's files are in archive and not restored."""
    view = archive_views(db, [asset_id], now_ms).get(asset_id, NOT_ARCHIVED)
    if view.downloadable:
        return
    # 422 ("invalid parameters for the request to complete"), as for an asset with
    # no file yet: the request names an asset whose file cannot be served now. 403
    # would blame permissions, and 409 means a restore that failed.
    if view.restoring:
        raise ApiError(
            422,
            f"asset item {asset_id} is archived; its restore is under way, ready in "
            f"{view.minutes_remaining()} minutes",
        )
    raise ApiError(
        422,
        f"asset item {asset_id} is archived; restore it first "
        "(POST /api/v1/asset_items/restores)",
    )


def send_to_archive(session: Session, asset_id: int, tier: str, now_ms: int) -> None:
    """Archive an asset in `tier`, ending any restore it had."""
    state = session.get(ArchiveState, asset_id)
    if state is None:
        state = ArchiveState(asset_id=asset_id)
        session.add(state)
    state.tier = tier
    state.archived_at = now_ms
    state.restore_id = None
    state.restore_ready_at = None
    state.restore_permanent = False
    state.restore_expires_at = None


def start_restore(
    state: ArchiveState, request: RestoreRequest, now_ms: int
) -> ArchiveView:
    """Apply a restore request to one archived asset; return its state after.

    A restore under way keeps its own options. An asset restored for a time is made
    permanent at once, or kept out for `expiry` more days from now.
    """
    view = archive_view(state, now_ms)
    if view.restoring:
        return view
    if view.restored:
        state.restore_permanent = request.permanent
        state.restore_expires_at = _expiry(now_ms, request)
    else:
        delay = RESTORE_DELAY_SECONDS[(state.tier, request.expedited)]
        state.restore_ready_at = now_ms + delay * 1000
        state.restore_permanent = request.permanent
        state.restore_expires_at = _expiry(state.restore_ready_at, request)
    state.restore_id = request.id
    return archive_view(state, now_ms)


def _expiry(ready_at: int, request: RestoreRequest) -> int | None:
    if request.permanent or request.expiry_days is None:
        return None
    return ready_at + request.expiry_days * DAY_MS

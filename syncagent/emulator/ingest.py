"""Asynchronous ingest (--ingest-delay): the asset takes its new file some time
after `complete` has answered 204.

The reference calls `complete` a signal and says the asset records "will be filled
out after" the upload, so a client must not expect the asset to be complete at
once. With a delay, `complete` stores the file and answers, but the asset stays as
it was (a new asset: `status` "created", no size nor checksum, not downloadable; a
revision or replacement: the previous file, still downloadable) until the delay has
passed on the emulator's clock, which POST /_emulator/clock moves forward. Every API
request first applies the ingests that are due, so whatever shows an asset (its
details, batch, search, folder listings, downloads, revisions) sees one state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from syncagent.emulator.completion import COMPLETION_COLUMNS, adopt, after_adopt
from syncagent.emulator.db import Asset, PendingIngest, Record, StoredObject, Upload

if TYPE_CHECKING:
    from syncagent.emulator.context import EmulatorContext

logger = logging.getLogger(__name__)

_DUE = (
    select(PendingIngest.upload_id, PendingIngest.object_key, PendingIngest.checksum)
    .where(PendingIngest.ready_at <= bindparam("now"))
    .order_by(PendingIngest.ready_at, PendingIngest.upload_id)
)
_NEXT_DUE = select(func.min(PendingIngest.ready_at))
_UPLOAD = (
    select(*COMPLETION_COLUMNS)
    .join(Asset, Asset.id == Upload.asset_id)
    .where(Upload.id == bindparam("upload_id"))
)
_DONE = delete(PendingIngest).where(PendingIngest.upload_id == bindparam("upload_id"))
_FORGET_OBJECT = delete(StoredObject).where(StoredObject.key == bindparam("key"))
_MARK_COMPLETE = (
    update(Upload)
    .where(Upload.id == bindparam("upload_id"), Upload.state == "ingesting")
    .values(state="complete")
)


class Ingests:
    """When the next pending ingest is due, so that requests check a number, not
    the database (touched on the event loop only)."""

    def __init__(self, engine: Engine) -> None:
        with engine.connect() as db:
            self._next_due: int | None = db.scalar(_NEXT_DUE)

    def note(self, ready_at: int) -> None:
        """Remember an ingest that will be due at `ready_at` (epoch ms)."""
        if self._next_due is None or ready_at < self._next_due:
            self._next_due = ready_at

    def settle_due(self, ctx: EmulatorContext) -> None:
        """Give their new file to the assets whose ingest is due."""
        now = ctx.clock.now_ms()
        if self._next_due is None or now < self._next_due:
            return
        with ctx.engine.connect() as db:
            due = list(db.execute(_DUE, {"now": now}))
        for pending in due:
            _settle(ctx, pending)
        with ctx.engine.connect() as db:
            self._next_due = db.scalar(_NEXT_DUE)


def _settle(ctx: EmulatorContext, pending: Record) -> None:
    with ctx.engine.begin() as db:
        params = {"upload_id": pending.upload_id}
        upload = db.execute(_UPLOAD, params).first()
        db.execute(_DONE, params)
        if upload is None or not db.execute(_MARK_COMPLETE, params).rowcount:
            # Its asset was deleted or the upload superseded: the file is nobody's.
            _forget(ctx, db, pending.object_key)
            return
        adopted = adopt(ctx, db, upload, pending.object_key, pending.checksum)
    after_adopt(ctx, upload, pending.object_key, adopted)


def _forget(ctx: EmulatorContext, db: Connection, key: str) -> None:
    db.execute(_FORGET_OBJECT, {"key": key})
    ctx.objects.delete(key)

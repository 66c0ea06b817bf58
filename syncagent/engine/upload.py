"""Carry an upload from wherever it stands to verified in Compass and recorded.

An upload is checkpointed in the ledger at each step — asset created, multipart
initiated, parts confirmed, completion asked (but for one part of a new asset, see
Uploader._finished_before) — so a crash at any instant resumes it where it stopped:
no asset is created twice, no confirmed part is sent twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from syncagent.compass import (
    AmbiguousResult,
    AssetItem,
    CompassClient,
    IntegrityError,
    InvalidRequest,
    NewAsset,
    NotFound,
    TransientError,
    UrlExpired,
)
from syncagent.engine.hashing import (
    BufferBudget,
    Part,
    PartReader,
    ShortRead,
    md5_of_file,
    part_count_for,
)
from syncagent.engine.hooks import AssetDescription
from syncagent.engine.problems import (
    FileChanged,
    FileProblem,
    FileVanished,
    UploadStopped,
)
from syncagent.engine.progress import Progress
from syncagent.ledger import EntryRecord, Ledger, UploadRecord
from syncagent.logs import in_context

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
URL_BATCH = 100
PART_ATTEMPTS = 4
COMPLETE_WAIT_SECONDS = 60.0
LEASE = timedelta(minutes=10)


Describe = Callable[[UploadRecord], AssetDescription]
Recorded = Callable[["Transferred", BaseException | None], None]
"""Called once a verified upload is recorded: with the error if recording failed."""


def _undescribed(upload: UploadRecord) -> AssetDescription:
    del upload
    return AssetDescription()


def _new_asset(upload: UploadRecord, description: AssetDescription) -> NewAsset:
    return NewAsset(
        upload.remote_name,
        [upload.folder_id],
        upload.file_size,
        custom_metadata_fields=description.custom_metadata_fields,
        titles=description.titles,
    )


# How far the server's clock may be from ours when telling our orphans from the
# uploads other people started before us.
CLOCK_SKEW = timedelta(minutes=2)


def _made_since(created_at: datetime | None, upload: UploadRecord) -> bool:
    """Whether an asset may have been created by this upload's own request."""
    if created_at is None or upload.started_at is None:
        return True
    return created_at >= upload.started_at - CLOCK_SKEW


def choose_part_size(size: int, preferred: int) -> int:
    """The part size for a file: the preferred one, raised so no more than 10,000 parts
    are needed (in whole MiB), never below 5 MiB."""
    part_size = max(preferred, MIN_PART_SIZE)
    needed = -(-size // MAX_PARTS)
    if needed > part_size:
        mib = 1024 * 1024
        part_size = -(-needed // mib) * mib
    return part_size


@dataclass(frozen=True)
class Transferred:
    """An upload that was verified in Compass and recorded in the ledger."""

    rel_path: str
    kind: str
    asset_id: int
    size: int
    bytes_sent: int
    seconds: float


@dataclass
class Counters:
    """Bytes moved by a run, shared by the worker threads."""

    bytes_read: int = 0
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sent_by: dict[int, int] = {}

    def add(
        self, *, read: int = 0, sent: int = 0, upload_id: int | None = None
    ) -> None:
        """Count bytes read from local files and bytes sent in parts (for
        `upload_id`, when given, so that each upload knows what it sent)."""
        with self._lock:
            self.bytes_read += read
            self.bytes_sent += sent
            if upload_id is not None:
                self._sent_by[upload_id] = self._sent_by.get(upload_id, 0) + sent

    def sent_for(self, upload_id: int) -> int:
        """Bytes one upload has sent so far in this run; forgets them."""
        with self._lock:
            return self._sent_by.pop(upload_id, 0)


class _UrlBook:
    """Presigned part URLs of one upload, fetched in batches and renewed on expiry."""

    def __init__(self, client: CompassClient, asset_id: int, numbers: Sequence[int]):
        self.client = client
        self.asset_id = asset_id
        self.numbers = list(numbers)
        self.urls: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, number: int) -> str:
        with self._lock:
            if number not in self.urls:
                start = self.numbers.index(number)
                batch = self.numbers[start : start + URL_BATCH]
                self.urls.update(self.client.retrieve_upload_urls(self.asset_id, batch))
            return self.urls[number]

    def renew(self, number: int) -> None:
        with self._lock:
            fresh = self.client.retrieve_upload_urls(self.asset_id, [number])
            self.urls.update(fresh)


SentPart = tuple[int, str, int]
"""A part sent and checked against its ETag: number, MD5, size."""


class _Confirmations:
    """Confirms the sent parts of one upload with Compass, then checkpoints them.

    It runs on a thread of its own, so a sender goes on to its next part at once
    instead of waiting for two round trips; and one call confirms every part sent
    meanwhile, in the batches the reference recommends. A crash loses at most the
    parts sent but not yet confirmed: they are sent again on resume.
    """

    def __init__(
        self, uploader: Uploader, upload: UploadRecord, pool: ThreadPoolExecutor
    ) -> None:
        self._uploader = uploader
        self._upload = upload
        self._pool = pool
        self._lock = threading.Lock()
        self._waiting: list[SentPart] = []
        self._busy = False
        self._runs: list[Future[None]] = []
        self._error: BaseException | None = None

    def add(self, sent: SentPart) -> None:
        """Queue a sent part; start confirming unless a run is already going."""
        with self._lock:
            if self._error is not None:
                return  # the upload fails with that error; this part goes again
            self._waiting.append(sent)
            if self._busy:
                return  # the run in progress takes it in its next batch
            self._busy = True
            self._runs.append(self._pool.submit(in_context(self._drain)))

    def check(self) -> None:
        """Raise the error a confirmation met, if one did."""
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Wait until every queued part is confirmed; raise what went wrong."""
        self.settle()
        self.check()

    def settle(self) -> None:
        """Wait for the confirmations under way, raising nothing."""
        wait(self._runs)

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._busy = False
                    return
            try:
                self._confirm(batch)
            except BaseException as exc:
                with self._lock:
                    self._error = exc
                    self._waiting = []
                    self._busy = False
                return

    def _confirm(self, batch: list[SentPart]) -> None:
        upload = self._upload
        assert upload.asset_id is not None
        batch.sort()
        claims = [(number, md5) for number, md5, _size in batch]
        self._uploader.client.complete_parts(upload.asset_id, claims)
        self._uploader.ledger.confirm_parts(upload.upload_id, batch)


class Uploader:
    """Drives uploads through the multipart flow with ledger checkpoints."""

    def __init__(
        self,
        client: CompassClient,
        ledger: Ledger,
        *,
        owner: str,
        part_size: int,
        concurrency: int,
        memory_limit: int,
        progress: Progress,
        ingest_wait: float = COMPLETE_WAIT_SECONDS,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.owner = owner
        self.part_size = part_size
        self.ingest_wait = ingest_wait
        self.progress = progress
        self.counters = Counters()
        self.budget = BufferBudget(max(memory_limit, MIN_PART_SIZE))
        self.part_pool = ThreadPoolExecutor(concurrency, thread_name_prefix="part")
        self.confirm_pool = ThreadPoolExecutor(1, thread_name_prefix="confirm")

    def close(self) -> None:
        """Stop the worker pools once their work is done."""
        self.part_pool.shutdown(wait=True, cancel_futures=True)
        self.confirm_pool.shutdown(wait=True)

    # -- creating assets --------------------------------------------------------

    def create_assets(
        self, uploads: Sequence[UploadRecord], describe: Describe = _undescribed
    ) -> list[UploadRecord]:
        """Create the assets of new uploads in one call; returns them with asset IDs.

        When the answer is lost, assets that the call did create are found by name in
        their folders and adopted, so a retry never leaves a duplicate behind.
        """
        items = [_new_asset(u, describe(u)) for u in uploads]
        try:
            created = self.client.create_assets(items)
        except AmbiguousResult as exc:
            log.warning(
                "%s (and %d more): creating their assets: %s; looking for them in "
                "Compass before creating any again",
                uploads[0].rel_path,
                len(uploads) - 1,
                exc,
            )
            return self._adopt_or_create(uploads, describe)
        assets = {
            u.upload_id: a.asset_id for u, a in zip(uploads, created, strict=True)
        }
        self.ledger.set_upload_assets(assets)
        return [
            replace(u, asset_id=assets[u.upload_id], state="created") for u in uploads
        ]

    def _adopt_or_create(
        self, uploads: Sequence[UploadRecord], describe: Describe
    ) -> list[UploadRecord]:
        adopted = self.adopt_orphans(uploads)
        missing = [u for u in uploads if u.upload_id not in adopted]
        done = [
            replace(u, asset_id=adopted[u.upload_id], state="created")
            for u in uploads
            if u.upload_id in adopted
        ]
        if missing:
            done.extend(self.create_assets(missing, describe))
        return done

    def adopt_orphans(self, uploads: Sequence[UploadRecord]) -> dict[int, int]:
        """Find assets a lost answer created for these uploads; record and return them.

        An orphan is an asset in the upload's folder with its name, never completed,
        not known to the ledger, and created after the upload began (give or take
        the clocks' skew): an older unfinished asset of that name is someone else's
        upload in progress, never ours. The newest candidate wins.
        """
        if not uploads:
            return {}
        claimed = self.ledger.claimed_asset_ids(uploads[0].mapping_id)
        candidates: dict[tuple[int, str], list[int]] = {}
        for folder_id in {u.folder_id for u in uploads}:
            for asset in self.client.list_folder_assets(folder_id):
                if asset.asset_id not in claimed:
                    key = (folder_id, asset.name)
                    candidates.setdefault(key, []).append(asset.asset_id)
        wanted = [
            a for u in uploads for a in candidates.get((u.folder_id, u.remote_name), [])
        ]
        unfinished = {
            a.asset_id: a.created_at
            for a in self.client.get_assets(wanted)
            if a.status != "complete"
        }
        adopted: dict[int, int] = {}
        for upload in uploads:
            key = (upload.folder_id, upload.remote_name)
            for asset_id in sorted(candidates.get(key, []), reverse=True):
                fresh = _made_since(unfinished.get(asset_id), upload)
                if (
                    fresh
                    and asset_id in unfinished
                    and asset_id not in adopted.values()
                ):
                    adopted[upload.upload_id] = asset_id
                    log.info("%s: adopted asset %d", upload.rel_path, asset_id)
                    break
        self.ledger.set_upload_assets(adopted)
        return adopted

    # -- one upload, start to end -----------------------------------------------

    def carry(
        self,
        root: Path,
        upload: UploadRecord,
        describe: Describe = _undescribed,
        stop: threading.Event | None = None,
        recorded: Recorded | None = None,
        *,
        resumed: bool = False,
    ) -> Transferred:
        """Take one upload to verified-and-recorded, resuming from its checkpoint.

        Raises FileProblem for local trouble and CompassError for the server's; the
        upload stays in the ledger to be resumed unless the file is gone. Once `stop`
        is set, no new part is read: UploadStopped is raised after the parts in
        flight, and the upload resumes from there on the next run.

        With `recorded`, the verified upload is recorded in a batch with others
        instead of before returning, and `recorded` is called once it is (or once
        recording failed); the ledger's `flush_deferred` waits for that.

        `resumed` says a previous run left the upload: one whose asset Compass
        shows complete already is recorded without sending anything again.
        """
        started = time.monotonic()
        self.counters.sent_for(upload.upload_id)  # what a stopped try left
        finished = self._finished_before(root, upload) if resumed else None
        if finished is not None:
            upload, asset = finished
            return self._verified(upload, asset, started, recorded)
        try:
            stream = open(root / upload.rel_path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            if upload.state != "completing":
                self.abandon(upload)
                raise FileVanished() from None
            asset = self._complete_without_file(upload)
        except OSError as exc:
            raise FileProblem(
                f"cannot read the file: {exc.strerror or exc}", permanent=True
            ) from exc
        else:
            with stream:
                upload = self._follow_file(upload, os.fstat(stream.fileno()))
                try:
                    upload = self._advance(stream, upload, describe, stop)
                except NotFound:
                    if not self._asset_is_gone(upload):
                        raise
                    upload = self._asset_gone(upload)
                    stream.seek(0)
                    upload = self._advance(stream, upload, describe, stop)
            asset = self._complete(upload)
        return self._verified(upload, asset, started, recorded)

    def _verified(
        self,
        upload: UploadRecord,
        asset: AssetItem,
        started: float,
        recorded: Recorded | None,
    ) -> Transferred:
        """Record an upload Compass holds, verified (see carry for `recorded`)."""
        done = Transferred(
            rel_path=upload.rel_path,
            kind=upload.kind,
            asset_id=asset.asset_id,
            size=upload.file_size,
            bytes_sent=self.counters.sent_for(upload.upload_id),
            seconds=time.monotonic() - started,
        )
        entry = _verified_entry(upload, asset)
        if recorded is None:
            self.ledger.finish_upload(upload, entry)
        else:
            # Followed up on the ledger's thread, under this file's log context.
            follow_up = in_context(recorded)
            self.ledger.finish_upload_later(
                upload, entry, lambda error: follow_up(done, error)
            )
        return done

    def _advance(
        self,
        stream: BinaryIO,
        upload: UploadRecord,
        describe: Describe,
        stop: threading.Event | None,
    ) -> UploadRecord:
        # Step: make sure the asset (or the revision) exists.
        if upload.state == "creating":
            upload = self._open_asset(upload, describe)

        # Step: initiate the multipart upload.
        if upload.state == "created":
            upload = self._initiate(upload)

        # Step: send the parts not yet confirmed.
        if upload.state == "initiated":
            upload = self._send_parts(stream, upload, stop)
        return upload

    def _finished_before(
        self, root: Path, upload: UploadRecord
    ) -> tuple[UploadRecord, AssetItem] | None:
        """A resumed one-part upload of a new asset that a stopped run completed.

        One-part uploads record no "completing" step (a checkpoint per small file
        is the costliest thing an upload of many does), so after a stop between
        asking `complete` and recording the result, the ledger still says
        "created". Compass shows the asset complete then: with the file's own
        bytes (hashed again, it is one part) it is recorded as such; with the file
        gone or changed since it was read, it is recorded as it was read, so the
        pass sees the rename, move, deletion or change as of any synced file.
        Returns the upload with the asset's checksum, and the asset.
        """
        if upload.kind != "new" or upload.state != "created" or upload.asset_id is None:
            return None
        try:
            asset = self.client.get_asset(upload.asset_id)
        except NotFound:
            return None
        if asset.status != "complete" or asset.size != upload.file_size:
            return None
        if asset.size > choose_part_size(asset.size, self.part_size):
            return None  # several parts: those record every step
        try:
            with open(root / upload.rel_path, "rb") as stream:
                if _as_read(upload, os.fstat(stream.fileno())):
                    checksum, size = md5_of_file(stream)
                    self.counters.add(read=size)
                    if checksum != asset.checksum:
                        return None  # other bytes: sent again, as before
        except FileNotFoundError:
            pass
        log.info(
            "%s: asset %d was completed by a run that stopped before recording it",
            upload.rel_path,
            asset.asset_id,
        )
        return replace(upload, checksum=asset.checksum), asset

    def _complete_without_file(self, upload: UploadRecord) -> AssetItem:
        """Finish an upload whose file went away after every byte was sent: a run
        stopped (crashed) between asking Compass to complete it and recording it,
        and the file was renamed, moved or deleted since.

        Compass holds the asset complete, or soon will: it is recorded as the file
        was, so the pass then sees a synced file renamed (its asset renamed), moved
        or deleted (`on_local_delete`). Abandoned, it would be an asset nobody
        knows, and a renamed file would go up again beside it.
        """
        try:
            return self._complete(upload)
        except NotFound:
            self.ledger.drop_upload(upload.upload_id)
            raise FileVanished() from None

    def _asset_is_gone(self, upload: UploadRecord) -> bool:
        """Whether the asset of an upload in progress no longer exists (a part URL
        that is not found says nothing about the asset)."""
        if upload.asset_id is None or upload.state == "creating":
            return False
        try:
            self.client.get_asset(upload.asset_id)
        except NotFound:
            return True
        return False

    def _asset_gone(self, upload: UploadRecord) -> UploadRecord:
        """The asset an upload in progress was sending to is gone from Compass
        (deleted meanwhile, 404 or 410): the file goes up as a new asset."""
        log.info(
            "%s: asset %s is gone from Compass; uploading as a new asset",
            upload.rel_path,
            upload.asset_id,
        )
        self.ledger.make_upload_new(upload.upload_id)
        return replace(
            upload, kind="new", asset_id=None, state="creating", confirmed_parts={}
        )

    def abandon(self, upload: UploadRecord) -> None:
        """Forget an upload whose file is gone, removing an asset it left unfinished."""
        if upload.kind == "new" and upload.asset_id is not None:
            try:
                asset = self.client.get_asset(upload.asset_id)
                if asset.status != "complete":
                    self.client.delete_from_folders(
                        {upload.asset_id: [upload.folder_id]}
                    )
            except NotFound:
                pass
        self.ledger.drop_upload(upload.upload_id)

    def _follow_file(self, upload: UploadRecord, st: os.stat_result) -> UploadRecord:
        """Reconcile an upload with the file as it is now."""
        if _as_read(upload, st):
            return upload
        if upload.state == "completing":
            # Every byte was read and sent; finish that version, the change is next.
            return upload
        log.info(
            "%s: changed since its upload began; starting it over", upload.rel_path
        )
        state, forget = upload.state, False
        resized = st.st_size != upload.file_size
        if upload.kind == "new" and state != "creating" and resized:
            # The asset was created for the old size: remove it and create anew.
            self.abandon_asset(upload)
            state, forget = "creating", True
        elif upload.kind == "revision":
            state = "creating"
        elif state != "creating":
            state = "created"
        self.ledger.reset_upload(upload.upload_id, state=state, forget_asset=forget)
        self.ledger.restat_upload(
            upload.upload_id,
            file_size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            inode=st.st_ino,
        )
        return self._reload(upload)

    def abandon_asset(self, upload: UploadRecord) -> None:
        """Remove the unfinished asset of a new upload so it can be created again."""
        if upload.asset_id is None:
            return
        with contextlib.suppress(NotFound):
            self.client.delete_from_folders({upload.asset_id: [upload.folder_id]})

    def _open_asset(self, upload: UploadRecord, describe: Describe) -> UploadRecord:
        current = self._still_ours(upload) if upload.kind == "revision" else None
        if upload.kind == "revision" and current is None:
            # The asset was deleted, or left this folder, since the last sync: the
            # file goes up as a new asset rather than into someone else's.
            log.info(
                "%s: asset %s is no longer in folder %d; uploading as a new asset",
                upload.rel_path,
                upload.asset_id,
                upload.folder_id,
            )
            self.ledger.make_upload_new(upload.upload_id)
            upload = replace(upload, kind="new", asset_id=None, confirmed_parts={})
        if upload.kind == "new":
            return self.create_assets([upload], describe)[0]
        assert upload.asset_id is not None and current is not None
        # A revision carries a name, which the asset takes: the one it has now, so
        # that a rename made in Compass since the last sync stays (a rename made
        # here is an asset rename of its own).
        self.client.create_revision(
            upload.asset_id, current.name or upload.remote_name, upload.file_size
        )
        self.ledger.reset_upload(upload.upload_id, state="created")
        return replace(upload, state="created", confirmed_parts={})

    def _still_ours(self, upload: UploadRecord) -> AssetItem | None:
        """The asset a revision is for, if it still exists in the upload's folder."""
        assert upload.asset_id is not None
        try:
            asset = self.client.get_asset(upload.asset_id)
        except NotFound:
            return None
        return asset if upload.folder_id in asset.folder_ids else None

    def _initiate(self, upload: UploadRecord) -> UploadRecord:
        assert upload.asset_id is not None
        part_size = choose_part_size(upload.file_size, self.part_size)
        expected = part_count_for(upload.file_size, part_size)
        part_count = self.client.initiate_upload(upload.asset_id, part_size)
        if part_count != expected:
            raise TransientError(
                f"initiate answered {part_count} parts for {upload.file_size} bytes "
                f"in parts of {part_size}; expected {expected}"
            )
        if part_count > 1:
            # A one-part upload is cheaper to initiate and send again after a crash
            # than to checkpoint step by step.
            self.ledger.set_upload_initiated(upload.upload_id, part_size, part_count)
        return replace(
            upload,
            part_size=part_size,
            part_count=part_count,
            state="initiated",
            confirmed_parts={},
        )

    # -- parts ------------------------------------------------------------------

    def _send_parts(
        self, stream: BinaryIO, upload: UploadRecord, stop: threading.Event | None
    ) -> UploadRecord:
        assert upload.asset_id is not None and upload.part_size and upload.part_count
        confirmed = upload.confirmed_parts
        missing = [n for n in range(1, upload.part_count + 1) if n not in confirmed]
        urls = _UrlBook(self.client, upload.asset_id, missing)
        reader = PartReader(stream, upload.file_size, upload.part_size, self.budget)
        confirmations = _Confirmations(self, upload, self.confirm_pool)
        in_flight: list[Future[None]] = []
        try:
            for part in reader.parts():
                if stop is not None and stop.is_set():
                    part.release()
                    wait(in_flight)
                    self._raise_failed(in_flight)
                    confirmations.finish()
                    raise UploadStopped()
                if part.number in confirmed:
                    same = confirmed[part.number] == part.md5()
                    part.release()
                    if not same:
                        raise FileChanged("differs from the parts already sent")
                    continue
                if upload.part_count == 1:
                    # Nothing to overlap with: send and confirm it from this thread.
                    self._put(upload, urls, part, stop, self._confirm_now(upload))
                    continue
                in_flight.append(
                    self.part_pool.submit(
                        in_context(self._put),
                        upload,
                        urls,
                        part,
                        stop,
                        confirmations.add,
                    )
                )
                del part  # the sender holds it now; keep no second reference
                self._raise_failed(in_flight)
                confirmations.check()
            wait(in_flight)
            self._raise_failed(in_flight)
            confirmations.finish()
        except ShortRead as exc:
            raise FileChanged("shrank while being uploaded") from exc
        finally:
            self.counters.add(read=reader.bytes_read)
            self._wait_quietly(in_flight)
            # Parts already sent are checkpointed even when the upload stops here.
            confirmations.settle()

        # Step: check the file held still while it was read.
        if not _as_read(upload, os.fstat(stream.fileno())) or not reader.at_end():
            raise FileChanged()
        checksum = reader.whole_md5()
        if upload.part_count > 1 or upload.kind != "new":
            # A one-part new asset goes without: see _finished_before.
            self.ledger.set_upload_completing(upload.upload_id, checksum)
        return replace(upload, state="completing", checksum=checksum)

    def _confirm_now(self, upload: UploadRecord) -> Callable[[SentPart], None]:
        """Confirm the only part of a one-part upload (no checkpoint: it is cheaper
        to send it again after a crash)."""
        assert upload.asset_id is not None
        asset_id = upload.asset_id

        def confirm(sent: SentPart) -> None:
            number, md5, _size = sent
            self.client.complete_parts(asset_id, [(number, md5)])

        return confirm

    def _put(
        self,
        upload: UploadRecord,
        urls: _UrlBook,
        part: Part,
        stop: threading.Event | None,
        confirm: Callable[[SentPart], None],
    ) -> None:
        """PUT one part, check its ETag, then hand it to `confirm`.

        Renews an expired URL and resends corrupted bytes, a few times. A part
        still waiting for a worker when `stop` is set is not sent.
        """
        assert upload.asset_id is not None
        try:
            if stop is not None and stop.is_set():
                raise UploadStopped()
            for attempt in range(1, PART_ATTEMPTS + 1):
                try:
                    self.client.upload_part(
                        urls.get(part.number), part.data, part.md5()
                    )
                    break
                except UrlExpired as exc:
                    if attempt == PART_ATTEMPTS:
                        # Fresh URLs refused again and again: a clock or storage
                        # trouble on Compass's side, which passes; not the file's.
                        raise TransientError(
                            f"{exc} ({PART_ATTEMPTS} fresh part URLs in a row); the "
                            "upload resumes at the next pass"
                        ) from exc
                    urls.renew(part.number)
                except IntegrityError as exc:
                    if attempt == PART_ATTEMPTS:
                        raise
                    log.warning(
                        "%s: part %d of asset %d: %s; sending it again",
                        upload.rel_path,
                        part.number,
                        upload.asset_id,
                        exc,
                    )
        finally:
            part.release()
        self.counters.add(sent=len(part.data), upload_id=upload.upload_id)
        self.progress.bytes_sent(len(part.data))
        confirm((part.number, part.md5(), len(part.data)))

    @staticmethod
    def _raise_failed(in_flight: list[Future[None]]) -> None:
        """Re-raise the error of the first part that failed, if one did."""
        for future in in_flight:
            if future.done() and future.exception() is not None:
                future.result()

    @staticmethod
    def _wait_quietly(in_flight: list[Future[None]]) -> None:
        for future in in_flight:
            future.cancel()
        wait(in_flight)

    # -- completion and verification -------------------------------------------

    def _complete(self, upload: UploadRecord) -> AssetItem:
        assert upload.asset_id is not None and upload.checksum is not None
        try:
            self.client.complete_upload(upload.asset_id)
        except (AmbiguousResult, InvalidRequest) as exc:
            # Completed already (a lost answer, or a run that crashed after asking)?
            asset = self.client.get_asset(upload.asset_id)
            if not self._matches(asset, upload):
                if isinstance(exc, InvalidRequest):
                    self.ledger.reset_upload(upload.upload_id, state="created")
                raise
        asset = self._await_complete(upload)
        if not self._matches(asset, upload) and self._still_ingesting(asset, upload):
            # Compass took every byte and is still making them the asset's file:
            # the upload stays "completing", and the next pass looks again.
            raise TransientError(
                f"Compass is still ingesting it (asset {asset.asset_id}, not shown "
                f"after {self.ingest_wait:.0f} s); the next pass verifies it"
            )
        if not self._matches(asset, upload):
            self.ledger.reset_upload(upload.upload_id, state="created")
            raise IntegrityError(
                f"Compass holds {asset.size} bytes with MD5 {asset.checksum}; the file "
                f"has {upload.file_size} bytes with MD5 {upload.checksum}; "
                "the upload starts over"
            )
        return asset

    def _await_complete(self, upload: UploadRecord) -> AssetItem:
        """The asset once Compass shows it complete with our checksum, or at timeout."""
        assert upload.asset_id is not None
        deadline = time.monotonic() + self.ingest_wait
        delay = 0.05
        while True:
            asset = self.client.get_asset(upload.asset_id)
            if self._matches(asset, upload) or time.monotonic() > deadline:
                return asset
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _still_ingesting(self, asset: AssetItem, upload: UploadRecord) -> bool:
        """Whether a completed upload's asset shows what it showed before: not
        complete yet (a new asset), or the previous version (a revision)."""
        if asset.status != "complete":
            return True
        if upload.kind != "revision":
            return False
        previous = self.ledger.entry(upload.mapping_id, upload.rel_path)
        return previous is not None and asset.checksum == previous.checksum

    @staticmethod
    def _matches(asset: AssetItem, upload: UploadRecord) -> bool:
        return (
            asset.status == "complete"
            and asset.checksum == upload.checksum
            and asset.size == upload.file_size
        )

    def _reload(self, upload: UploadRecord) -> UploadRecord:
        fresh = self.ledger.upload(upload.upload_id)
        if fresh is None:
            # Another agent finished or abandoned it meanwhile; the next pass sees
            # which.
            raise FileProblem("its upload record disappeared", permanent=False)
        return fresh


def _as_read(upload: UploadRecord, st: os.stat_result) -> bool:
    """Whether a stat shows the file as the upload took it: size, time, inode."""
    return (st.st_size, st.st_mtime_ns, st.st_ino) == (
        upload.file_size,
        upload.mtime_ns,
        upload.inode,
    )


def _verified_entry(upload: UploadRecord, asset: AssetItem) -> EntryRecord:
    """The entry of a file whose upload Compass holds, verified."""
    return EntryRecord(
        rel_path=upload.rel_path,
        kind="file",
        folder_id=upload.folder_id,
        asset_id=asset.asset_id,
        remote_name=asset.name or upload.remote_name,
        size=upload.file_size,
        mtime_ns=upload.mtime_ns,
        inode=upload.inode,
        checksum=upload.checksum,
        remote_updated_at=asset.updated_at,
        origin="local",
    )

"""The ledger: schema in step with the models, and the upload checkpoint lifecycle."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from syncagent.migrations import HEAD

from syncagent.ledger import EntryRecord, Ledger, LedgerError, MappingBusy, UploadStart
from syncagent.ledger.migrate import alembic_config, current_revision
from syncagent.ledger.models import Base

LEASE = timedelta(minutes=5)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.close()


def test_migrations_build_exactly_the_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert diff == []
    head = ScriptDirectory.from_config(alembic_config(ledger.engine)).get_current_head()
    assert current_revision(ledger.engine) == head == HEAD


def test_opening_again_keeps_the_data(ledger_url: str, ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    ledger.put_entry(
        mapping_id, EntryRecord("a.jpg", "file", 1001, 7, "a.jpg", 1, 2, 3, "f" * 32)
    )
    ledger.close()

    again = Ledger(ledger_url)

    assert again.ensure_mapping("/media", 1001) == mapping_id
    assert again.entries(mapping_id)["a.jpg"].asset_id == 7


def begin(ledger: Ledger, mapping_id: int, owner: str = "host:1:a") -> int:
    upload = ledger.begin_upload(
        mapping_id,
        rel_path="clip.mov",
        kind="new",
        folder_id=1001,
        remote_name="clip.mov",
        asset_id=None,
        file_size=20,
        mtime_ns=5,
        inode=9,
        owner=owner,
        lease=LEASE,
    )
    return upload.upload_id


def test_upload_checkpoints_then_entry_and_revision(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    upload_id = begin(ledger, mapping_id)

    ledger.set_upload_asset(upload_id, 42)
    ledger.set_upload_initiated(upload_id, 10, 2)
    ledger.confirm_parts(upload_id, [(1, "a" * 32, 10)])
    ledger.confirm_parts(upload_id, [(1, "a" * 32, 10)])  # repeating is harmless
    ledger.set_upload_completing(upload_id, "b" * 32)
    upload = ledger.upload(upload_id)

    assert upload is not None
    assert (upload.asset_id, upload.state, upload.checksum) == (
        42,
        "completing",
        "b" * 32,
    )
    assert upload.confirmed_parts == {1: "a" * 32}
    assert ledger.claimed_asset_ids(mapping_id) == {42}

    entry = EntryRecord("clip.mov", "file", 1001, 42, "clip.mov", 20, 5, 9, "b" * 32)
    ledger.finish_upload(upload, entry)

    assert ledger.uploads(mapping_id) == []
    assert ledger.entries(mapping_id)["clip.mov"].checksum == "b" * 32
    with ledger.engine.connect() as connection:
        parts = connection.execute(text("SELECT count(*) FROM upload_parts"))
        assert parts.scalar() == 0  # its confirmed parts went with it


def test_initiating_again_voids_confirmed_parts(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    upload_id = begin(ledger, mapping_id)
    ledger.set_upload_initiated(upload_id, 10, 2)
    ledger.confirm_parts(upload_id, [(1, "a" * 32, 10)])

    ledger.set_upload_initiated(upload_id, 10, 2)

    upload = ledger.upload(upload_id)
    assert upload is not None and upload.confirmed_parts == {}


def test_a_held_upload_is_taken_over_only_when_its_lease_ends_or_by_force(
    ledger: Ledger,
) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    upload_id = begin(ledger, mapping_id, owner="host:1:a")

    assert ledger.claim_upload(upload_id, "host:2:b", LEASE) is None
    forced = ledger.claim_upload(upload_id, "host:2:b", LEASE, force=True)
    assert forced is not None and forced.owner == "host:2:b"

    ledger.claim_upload(upload_id, "host:2:b", timedelta(seconds=-1))  # lease ends
    taken = ledger.claim_upload(upload_id, "host:3:c", LEASE)
    assert taken is not None and taken.owner == "host:3:c"


def test_failures_count_up_and_clear(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    ledger.record_failure(mapping_id, "x.mov", "upload", "first", permanent=False)
    ledger.record_failure(mapping_id, "x.mov", "upload", "second", permanent=True)

    [failure] = ledger.failures(mapping_id)
    assert (failure.reason, failure.count, failure.permanent) == ("second", 2, True)

    ledger.put_entry(
        mapping_id, EntryRecord("x.mov", "file", 1, 2, "x.mov", 1, 1, 1, "c" * 32)
    )
    assert ledger.failures(mapping_id) == []


def test_one_live_pass_per_mapping(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    ledger.start_pass(mapping_id, "upload", "host:1:a", lambda owner: True)

    with pytest.raises(MappingBusy, match="host:1:a"):
        ledger.start_pass(mapping_id, "upload", "host:2:b", lambda owner: True)

    # The first owner died: its pass is closed as interrupted and the new one starts.
    ledger.start_pass(mapping_id, "upload", "host:2:b", lambda owner: False)
    last = ledger.last_pass(mapping_id, "upload")
    assert last is not None and last.finished_at is None


def test_a_migration_cut_short_by_a_full_disk_leaves_nothing_half_done(
    tmp_path: Path,
) -> None:
    from sqlalchemy import event, inspect
    from sqlalchemy.exc import OperationalError

    from syncagent.ledger import migrate
    from syncagent.ledger.store import create_ledger_engine

    url = f"sqlite:///{tmp_path}/ledger.db"
    cramped = create_ledger_engine(url)

    @event.listens_for(cramped, "connect")
    def tiny_disk(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA max_page_count=12")  # room for a few tables only
        cursor.close()

    with pytest.raises(OperationalError, match="database or disk is full"):
        migrate.upgrade(cramped)
    assert inspect(cramped).get_table_names() in ([], ["alembic_version"])
    cramped.dispose()

    roomy = Ledger(url)  # space is back: the migration runs from the start

    assert current_revision(roomy.engine) == migrate.head_revision(roomy.engine)


def test_a_write_waits_for_another_process_holding_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        mapping_id = ledger.ensure_mapping("/media", 1001)
        # A `sync` elsewhere, holding the write lock for a moment.
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE mappings SET folder_id = folder_id")
        releaser = threading.Timer(1.5, other.execute, ["COMMIT"])
        releaser.start()
        started = time.monotonic()

        # Reads first, then writes: begun as a read, it could not wait.
        ledger.start_pass(mapping_id, "upload", "host:1:a", lambda owner: True)

        assert time.monotonic() - started >= 1.0  # it waited, and then went on
        releaser.join()
        other.close()
    finally:
        ledger.close()


def test_a_checkpoint_that_failed_leaves_the_next_ones_working(ledger: Ledger) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    start = UploadStart("a.mov", "new", 1001, "a.mov", None, 10, 1, 2)
    [upload] = ledger.begin_uploads(mapping_id, [start], "me", LEASE)

    # A write refused by the database (here a table that does not exist) fails
    # alone, as a LedgerError; the writer connection it ran on is not reused.
    with (
        pytest.raises(LedgerError, match=r"no such table|does not exist"),
        ledger._core() as db,
    ):
        db.execute(text("UPDATE no_such_table SET x = 1"))
    ledger.set_upload_completing(upload.upload_id, "c" * 32)

    reloaded = ledger.upload(upload.upload_id)
    assert reloaded is not None
    assert (reloaded.state, reloaded.checksum) == ("completing", "c" * 32)


def test_reads_in_a_snapshot_see_one_moment_while_another_thread_writes(
    ledger: Ledger,
) -> None:
    mapping_id = ledger.ensure_mapping("/media", 1001)
    upload = ledger.upload(begin(ledger, mapping_id))
    assert upload is not None
    entry = EntryRecord("clip.mov", "file", 1001, 42, "clip.mov", 20, 5, 9, "b" * 32)

    def finish_elsewhere() -> None:
        writer = threading.Thread(target=ledger.finish_upload, args=(upload, entry))
        writer.start()
        writer.join()

    with ledger.snapshot():
        assert ledger.count_entries(mapping_id) == 0
        finish_elsewhere()
        with ledger.snapshot():  # nested: still the outer moment
            assert len(ledger.uploads(mapping_id)) == 1
        assert ledger.entries(mapping_id) == {}

    assert ledger.count_entries(mapping_id) == 1
    assert ledger.uploads(mapping_id) == []

"""Background proxy generation after an upload completes, one job at a time.

The worker thread runs at a lower CPU priority (nice +10 on Linux), and so does
the ffmpeg it starts: proxies must not slow down the requests being served.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session, sessionmaker

from syncagent.emulator.db import Asset, Proxy, StoredObject
from syncagent.emulator.objects import ObjectStore
from syncagent.emulator.proxies import ProxyFile, generate_proxies, makes_proxies
from syncagent.emulator.records import drop_proxies

logger = logging.getLogger(__name__)

_NICE_STEP = 10


class ProxyJobs:
    """Makes proxies of completed uploads on a worker thread."""

    def __init__(self, sessions: sessionmaker[Any], objects: ObjectStore) -> None:
        self._sessions = sessions
        self._objects = objects
        self._pool = ThreadPoolExecutor(
            1, thread_name_prefix="emulator-proxies", initializer=_lower_priority
        )
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, asset_id: int, object_key: str, asset_class: str) -> None:
        """Queue proxy generation for an asset's current file."""
        with self._idle:
            self._pending += 1
        self._pool.submit(self._run, asset_id, object_key, asset_class)

    def resume(self) -> None:
        """Queue the jobs a previous run left unfinished."""
        with self._sessions() as session:
            query = select(Asset).where(Asset.proxy_state == "pending")
            todo = [(a.id, a.object_key, a.asset_class) for a in session.scalars(query)]
        for asset_id, object_key, asset_class in todo:
            if object_key is not None:
                self.submit(asset_id, object_key, asset_class)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return self._pending

    def close(self) -> None:
        """Finish the running job and drop the queued ones (resumed on restart)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, asset_id: int, object_key: str, asset_class: str) -> None:
        try:
            self._generate(asset_id, object_key, asset_class)
        except Exception:
            logger.exception("asset %s: proxy generation failed", asset_id)
            self._mark_done(asset_id, object_key)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _generate(self, asset_id: int, object_key: str, asset_class: str) -> None:
        made: list[ProxyFile] = []
        if makes_proxies(asset_class):
            out_dir = self._objects.path_of(self._objects.new_key("proxies"))
            out_dir.mkdir(parents=True, exist_ok=True)
            made = generate_proxies(
                self._objects.path_of(object_key), asset_class, out_dir
            )
            if not made:
                out_dir.rmdir()

        with self._sessions.begin() as session:
            current = session.scalar(
                select(Asset.object_key).where(Asset.id == asset_id)
            )
            if current != object_key:
                # The asset changed or went away while we worked: these are stale.
                for proxy_file in made:
                    proxy_file.path.unlink(missing_ok=True)
                return
            stale = drop_proxies(session, asset_id)
            for proxy_file in made:
                self._store(session, asset_id, proxy_file)
            session.execute(_done_update(asset_id, object_key))
        for key in stale:
            self._objects.delete(key)
        logger.info("asset %s: %d proxies made", asset_id, len(made))

    def _store(self, session: Session, asset_id: int, proxy_file: ProxyFile) -> None:
        key = proxy_file.path.relative_to(self._objects.root).as_posix()
        session.add(
            StoredObject(
                key=key,
                filename=proxy_file.path.name,
                content_type=proxy_file.content_type,
                size=proxy_file.size,
                md5=_file_md5(proxy_file.path),
            )
        )
        session.add(
            Proxy(
                asset_id=asset_id,
                type=proxy_file.type,
                object_key=key,
                size=proxy_file.size,
                width=proxy_file.width,
                height=proxy_file.height,
            )
        )

    def _mark_done(self, asset_id: int, object_key: str) -> None:
        with self._sessions.begin() as session:
            session.execute(_done_update(asset_id, object_key))


def _done_update(asset_id: int, object_key: str) -> Update:
    """The update that ends an asset's proxy work, unless its file changed since."""
    return (
        update(Asset)
        .where(Asset.id == asset_id, Asset.object_key == object_key)
        .values(proxy_state="done")
    )


def _lower_priority() -> None:
    """Make the worker thread (and the ffmpeg it starts) yield the CPU to requests."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere a thread ID is not a valid target for setpriority
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        nice = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(nice + _NICE_STEP, 19))


def _file_md5(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "md5").hexdigest()

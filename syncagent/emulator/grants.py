"""Each user's permission rows, kept in memory and dropped when a commit changes any.

Every API call checks permissions, and the rows change only through the admin
helpers, folder creation and seeding, all of which write Permission objects
through a Session. A session that flushed such a change marks itself; when it
commits or rolls back, the whole cache is dropped, and the next check reads the
rows again (a change made without the ORM would go unnoticed: there is none).

The cache belongs to the engine, so the permission checks in access.py need
nothing but the session or connection they already have.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from syncagent.emulator.db import PERMISSION_NAMES, Permission, core, engine_of

_BY_ENGINE: WeakKeyDictionary[Engine, Grants] = WeakKeyDictionary()
_CHANGED_KEY = "emulator.grants.changed"
_FLAG_COLUMNS = [getattr(Permission, name) for name in PERMISSION_NAMES]
_ROWS_OF_USER = select(Permission.folder_id, *_FLAG_COLUMNS).where(
    Permission.user_id == bindparam("user_id")
)

Flags = dict[str, bool]


class Grants:
    """Permission flags by user and folder, read from the database once."""

    def __init__(self) -> None:
        self._by_user: dict[int, dict[int, Flags]] = {}

    def of_user(self, db: Session | Connection, user_id: int) -> dict[int, Flags]:
        """Return the user's flags by folder ID (folders without a row left out)."""
        known = self._by_user.get(user_id)
        if known is None:
            rows = core(db).execute(_ROWS_OF_USER, {"user_id": user_id})
            known = {
                row[0]: dict(zip(PERMISSION_NAMES, map(bool, row[1:]), strict=True))
                for row in rows
            }
            self._by_user[user_id] = known
        return known

    def folder(self, db: Session | Connection, user_id: int, folder_id: int) -> Flags:
        """Return the user's flags on one folder (all false without a row)."""
        flags = self.of_user(db, user_id).get(folder_id)
        return dict(flags) if flags else dict.fromkeys(PERMISSION_NAMES, False)

    def combined(
        self, db: Session | Connection, user_id: int, folder_ids: Iterable[int]
    ) -> Flags:
        """Return the union of the user's flags over several folders."""
        by_folder = self.of_user(db, user_id)
        flags = dict.fromkeys(PERMISSION_NAMES, False)
        for folder_id in folder_ids:
            for name, value in by_folder.get(folder_id, {}).items():
                flags[name] = flags[name] or value
        return flags

    def forget(self) -> None:
        """Drop everything; the next check reads the database again."""
        self._by_user.clear()


def install(sessions: sessionmaker[Any]) -> Grants:
    """Give the factory's engine a Grants cache kept in step with commits."""
    grants = _BY_ENGINE[engine_of(sessions)] = Grants()
    event.listen(sessions, "after_flush", _note_changes)
    event.listen(sessions, "after_commit", _drop_if_changed)
    event.listen(sessions, "after_soft_rollback", _drop_if_changed)
    return grants


def grants_of(db: Session | Connection) -> Grants:
    """The cache of the engine under `db` (an empty one-off for other engines)."""
    engine = db.engine if isinstance(db, Connection) else db.get_bind()
    grants = _BY_ENGINE.get(engine) if isinstance(engine, Engine) else None
    return grants if grants is not None else Grants()


def _note_changes(session: Session, _context: object) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(item, Permission) for item in touched):
        session.info[_CHANGED_KEY] = True


def _drop_if_changed(session: Session, *_transaction: object) -> None:
    # On rollback too: the session itself may have cached rows it never committed.
    if session.info.pop(_CHANGED_KEY, False):
        grants_of(session).forget()

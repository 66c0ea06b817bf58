"""First-run data: users and folders from the command line, or the demo defaults."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from syncagent.emulator.access import folder_name_taken
from syncagent.emulator.db import PERMISSION_NAMES, Folder, Permission, User
from syncagent.emulator.users import set_permission, upsert_user

logger = logging.getLogger(__name__)

DEFAULT_USERS = (("demo", "demo"),)
DEFAULT_FOLDERS = ((1001, "Dropbox", None), (1002, "Library", None))


def seed(
    session: Session,
    users: Sequence[tuple[str, str]] | None,
    folders: Sequence[tuple[int, str, int | None]] | None,
    now_ms: int,
) -> None:
    """Create the given (or, on an empty store, the default) users and folders.

    Folders whose ID exists are left as they are. Each seeded user gets every
    permission on each seeded folder (on every folder when none are given) where
    it has no permission row yet, so permissions set later are kept.
    """
    if not users and session.scalar(select(func.count()).select_from(User)) == 0:
        users = DEFAULT_USERS
    if not folders and session.scalar(select(func.count()).select_from(Folder)) == 0:
        folders = DEFAULT_FOLDERS

    seeded_users = [
        upsert_user(session, name, password) for name, password in users or ()
    ]
    for folder_id, name, parent_id in folders or ():
        _ensure_folder(session, folder_id, name, parent_id, now_ms)
    session.flush()

    granted = [folder_id for folder_id, _name, _parent in folders or ()]
    if not granted:
        granted = list(session.scalars(select(Folder.id)))
    for user in seeded_users:
        for folder_id in granted:
            if session.get(Permission, (user.id, folder_id)) is None:
                set_permission(session, user.id, folder_id, PERMISSION_NAMES)


def _ensure_folder(
    session: Session, folder_id: int, name: str, parent_id: int | None, now_ms: int
) -> None:
    if session.get(Folder, folder_id) is not None:
        return
    if parent_id is not None and session.get(Folder, parent_id) is None:
        raise ValueError(
            f"folder {folder_id}: parent folder {parent_id} does not exist"
        )
    if folder_name_taken(session, name, parent_id):
        raise ValueError(f"folder {folder_id}: {name!r} already exists in that parent")

    session.add(Folder(id=folder_id, name=name, parent_id=parent_id, updated_at=now_ms))
    session.flush()
    logger.info("folder %s: created %r (parent %s)", folder_id, name, parent_id)

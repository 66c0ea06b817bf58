"""Users, passwords and per-folder permissions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from syncagent.emulator.db import PERMISSION_NAMES, Permission, User

_ITERATIONS = 20_000


@dataclass(frozen=True)
class Account:
    """Who a request authenticated as."""

    id: int
    name: str


class Accounts:
    """Users by ID, read once: users are never renamed or removed."""

    def __init__(self, sessions: sessionmaker[Any]) -> None:
        self._sessions = sessions
        self._by_id: dict[int, Account] = {}

    def get(self, user_id: int) -> Account | None:
        """Return the user with this ID, if there is one."""
        known = self._by_id.get(user_id)
        if known is None:
            with self._sessions() as session:
                query = select(User.name).where(User.id == user_id)
                name = session.scalar(query)
            if name is None:
                return None
            known = self._by_id[user_id] = Account(user_id, name)
        return known


def hash_password(password: str) -> str:
    """Return a salted pbkdf2-sha256 hash of `password`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    return f"{salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    """True when `password` hashes to `stored`."""
    salt_hex, _, digest_hex = stored.partition("$")
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(salt_hex), _ITERATIONS
    )
    return hmac.compare_digest(digest.hex(), digest_hex)


def find_user(session: Session, name: str) -> User | None:
    """Return the user called `name`, if any."""
    return session.scalars(select(User).where(User.name == name)).first()


def upsert_user(session: Session, name: str, password: str) -> User:
    """Create user `name`, or set the password of the existing one."""
    user = find_user(session, name)
    if user is None:
        user = User(name=name, password_hash=hash_password(password))
        session.add(user)
        session.flush()
    elif not password_matches(password, user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_permission(
    session: Session, user_id: int, folder_id: int, granted: Iterable[str]
) -> Permission:
    """Give `user_id` exactly the permissions `granted` on `folder_id`."""
    granted = set(granted)
    unknown = granted - set(PERMISSION_NAMES)
    if unknown:
        raise ValueError(f"unknown permissions: {', '.join(sorted(unknown))}")

    permission = session.get(Permission, (user_id, folder_id))
    if permission is None:
        permission = Permission(user_id=user_id, folder_id=folder_id)
        session.add(permission)
    for name in PERMISSION_NAMES:
        setattr(permission, name, name in granted)
    return permission


def copy_permissions(session: Session, from_folder: int, to_folder: int) -> None:
    """Give every user on `to_folder` the permissions they have on `from_folder`."""
    rows = session.scalars(
        select(Permission).where(Permission.folder_id == from_folder)
    )
    for row in list(rows):
        copy = Permission(user_id=row.user_id, folder_id=to_folder)
        for name, value in row.flags().items():
            setattr(copy, name, value)
        session.add(copy)


def parse_grant(value: object) -> set[str]:
    """Read a permission grant: "all", a list of names, or {name: bool}."""
    if value == "all":
        return set(PERMISSION_NAMES)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        names = set(value)
    elif isinstance(value, Mapping) and all(
        isinstance(v, bool) for v in value.values()
    ):
        names = {str(name) for name in value}
    else:
        raise ValueError('a grant is "all", a list of permission names or {name: bool}')

    unknown = names - set(PERMISSION_NAMES)
    if unknown:
        raise ValueError(f"unknown permissions: {', '.join(sorted(unknown))}")
    if isinstance(value, Mapping):
        return {name for name in names if value[name]}
    return names

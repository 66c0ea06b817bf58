"""Apply the Alembic migrations shipped with the package (`syncagent.migrations`)."""

from __future__ import annotations

import time
from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

UPGRADE_ATTEMPTS = 3


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic configuration pointing at the packaged migrations and `engine`."""
    script_location = resources.files("syncagent.migrations")
    config = AlembicConfig()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    """The newest schema revision shipped with the package."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> None:
    """Bring the ledger schema up to the newest revision (safe to repeat).

    Two processes opening a new ledger at once both try to create it; the loser's
    transaction fails, and it finds the schema made by the winner when it looks again.
    """
    head = head_revision(engine)
    for attempt in range(1, UPGRADE_ATTEMPTS + 1):
        if current_revision(engine) == head:
            return
        try:
            command.upgrade(alembic_config(engine), "head")
            return
        except SQLAlchemyError:
            if attempt == UPGRADE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the ledger is at, or None if it has none yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

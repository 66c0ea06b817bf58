"""Apply the Alembic migrations shipped with the package (`syncagent.migrations`).

Alembic is imported only when the ledger is not at the newest revision already: an
up-to-date ledger opens with one small query.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from syncagent.migrations import HEAD

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

UPGRADE_ATTEMPTS = 3


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic configuration pointing at the packaged migrations and `engine`."""
    from alembic.config import Config as AlembicConfig

    script_location = resources.files("syncagent.migrations")
    config = AlembicConfig()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    """The newest schema revision shipped with the package, according to Alembic."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> None:
    """Bring the ledger schema up to the newest revision (safe to repeat).

    Two processes opening a new ledger at once both try to create it; the loser's
    transaction fails, and it finds the schema made by the winner when it looks again.
    """
    for attempt in range(1, UPGRADE_ATTEMPTS + 1):
        if current_revision(engine) == HEAD:
            return
        try:
            from alembic import command

            command.upgrade(alembic_config(engine), "head")
            return
        except SQLAlchemyError:
            if attempt == UPGRADE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the ledger is at, or None if it has none yet."""
    with engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        if "alembic_version" not in tables:
            return None  # a new ledger
        return connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar()

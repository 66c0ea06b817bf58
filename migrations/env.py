"""Alembic environment: migrate the engine handed over by `syncagent.ledger.migrate`.

Run through `syncagent db upgrade` or automatically when the ledger opens; for the
`alembic` command line, set `sqlalchemy.url` in the config it is given.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from syncagent.ledger.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass an engine in config.attributes")
    return create_engine(url)


def run_migrations() -> None:
    """Run the migrations on one connection, in one transaction per revision."""
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()

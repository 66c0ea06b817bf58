"""Alembic environment of the ledger, installed as the package syncagent.migrations."""

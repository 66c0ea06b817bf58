"""Alembic environment of the ledger, installed as the package syncagent.migrations."""

# The newest revision in versions/, so that opening an up-to-date ledger needs no
# Alembic at all. A test checks it against Alembic's own idea of the head.
HEAD = "0003"

"""Pull state: proxies placed in mirrors, and local deletions kept in Compass.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_files",
        sa.Column("proxy_file_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.BigInteger(), nullable=False),
        sa.Column("asset_id", sa.BigInteger(), nullable=False),
        sa.Column("proxy_type", sa.String(length=64), nullable=False),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("source_checksum", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("proxy_file_id"),
        sa.UniqueConstraint("mapping_id", "folder_id", "asset_id", "proxy_type"),
    )
    op.create_table(
        "withheld_assets",
        sa.Column("withheld_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.BigInteger(), nullable=False),
        sa.Column("asset_id", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("withheld_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("withheld_id"),
        sa.UniqueConstraint("mapping_id", "folder_id", "asset_id"),
    )


def downgrade() -> None:
    op.drop_table("withheld_assets")
    op.drop_table("proxy_files")

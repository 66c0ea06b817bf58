"""Placements: downloads noted before they are renamed into place.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "placements",
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("replaces", sa.String(length=4096), nullable=True),
        sa.Column("folder_id", sa.BigInteger(), nullable=True),
        sa.Column("asset_id", sa.BigInteger(), nullable=False),
        sa.Column("remote_name", sa.String(length=1024), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("placement_id"),
        sa.UniqueConstraint("mapping_id", "rel_path"),
    )


def downgrade() -> None:
    op.drop_table("placements")

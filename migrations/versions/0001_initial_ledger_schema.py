"""Initial ledger schema: mappings, entries, uploads and their parts, revisions,
failures, passes and agents.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 15:57:47.812160
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("hostname", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_table(
        "mappings",
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("local_root", sa.String(length=4096), nullable=False),
        sa.Column("folder_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mapping_id"),
        sa.UniqueConstraint("local_root", "folder_id"),
    )
    op.create_table(
        "entries",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("folder_id", sa.BigInteger(), nullable=True),
        sa.Column("asset_id", sa.BigInteger(), nullable=True),
        sa.Column("remote_name", sa.String(length=1024), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("inode", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("entry_id"),
        sa.UniqueConstraint("mapping_id", "rel_path"),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index("ix_entries_asset_id", ["asset_id"], unique=False)

    op.create_table(
        "failures",
        sa.Column("failure_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("failure_id"),
        sa.UniqueConstraint("mapping_id", "rel_path"),
    )
    op.create_table(
        "passes",
        sa.Column("pass_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pass_id"),
    )
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_passes_mapping_kind", ["mapping_id", "kind"], unique=False
        )

    op.create_table(
        "revisions",
        sa.Column("revision_row_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("asset_id", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("revision_row_id"),
    )
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.create_index("ix_revisions_asset_id", ["asset_id"], unique=False)

    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.String(length=4096), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("folder_id", sa.BigInteger(), nullable=False),
        sa.Column("remote_name", sa.String(length=1024), nullable=False),
        sa.Column("asset_id", sa.BigInteger(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("part_size", sa.BigInteger(), nullable=True),
        sa.Column("part_count", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mapping_id"], ["mappings.mapping_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("upload_id"),
        sa.UniqueConstraint("mapping_id", "rel_path"),
    )
    op.create_table(
        "upload_parts",
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["uploads.upload_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("upload_id", "part_number"),
    )


def downgrade() -> None:
    op.drop_table("upload_parts")
    op.drop_table("uploads")
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_revisions_asset_id")

    op.drop_table("revisions")
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.drop_index("ix_passes_mapping_kind")

    op.drop_table("passes")
    op.drop_table("failures")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_asset_id")

    op.drop_table("entries")
    op.drop_table("mappings")
    op.drop_table("agents")

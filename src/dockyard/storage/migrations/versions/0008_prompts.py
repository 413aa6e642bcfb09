"""The prompt registry: versions, labels, label moves and the revision counter.

Revision ID: 0008
Revises: 0006 (re-chained onto 0007 when the alerts branch is merged)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("template", sa.Text, nullable=True),
        sa.Column("messages", JSONType, nullable=False),
        sa.Column("variables", JSONType, nullable=False),
        sa.Column("sample", JSONType, nullable=True),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_prompt_versions_created_at", "prompt_versions", ["created_at"])
    op.create_table(
        "prompt_labels",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "prompt_label_moves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_prompt_label_moves_name_label", "prompt_label_moves", ["name", "label", "id"]
    )
    revision_table = op.create_table(
        "prompt_revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    op.drop_table("prompt_revision")
    op.drop_table("prompt_label_moves")
    op.drop_table("prompt_labels")
    op.drop_table("prompt_versions")

"""Gradual rollouts: their table, and the variant of a run on its outcome and usage rows
(its quality score's variant came with 0010, the quality gate).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("assistant", sa.String(255), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("changed_by", sa.String(255), nullable=True),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    with op.batch_alter_table("run_outcomes") as t:
        t.add_column(sa.Column("variant", sa.String(16), nullable=True))
    with op.batch_alter_table("usage_ledger") as t:
        t.add_column(sa.Column("variant", sa.String(160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_ledger") as t:
        t.drop_column("variant")
    with op.batch_alter_table("run_outcomes") as t:
        t.drop_column("variant")
    op.drop_table("rollouts")

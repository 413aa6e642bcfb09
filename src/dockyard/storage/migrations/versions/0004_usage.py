"""Model usage and cost: on each run, and the ledger the aggregates are summed from.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("usage", JSONType, nullable=True))
    op.create_table(
        "usage_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(255), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=True),
    )
    op.create_index("ix_usage_ledger_run_id", "usage_ledger", ["run_id"])
    op.create_index("ix_usage_ledger_created", "usage_ledger", ["created_at"])
    op.create_index("ix_usage_ledger_tenant_created", "usage_ledger", ["tenant_id", "created_at"])
    op.create_index("ix_usage_ledger_key_created", "usage_ledger", ["key_id", "created_at"])
    op.create_index(
        "ix_usage_ledger_assistant_created", "usage_ledger", ["assistant_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("usage_ledger")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("usage")

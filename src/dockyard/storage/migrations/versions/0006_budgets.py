"""Budgets: holds taken at admission, the lock rows that serialise them, thresholds reached.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_holds",
        sa.Column("hold_id", sa.String(64), primary_key=True),
        sa.Column("line", sa.String(400), primary_key=True),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("limit_nanos", sa.BigInteger, nullable=False),
        sa.Column("amount_nanos", sa.BigInteger, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("forget_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_budget_holds_forget_at", "budget_holds", ["forget_at"])
    op.create_index("ix_budget_holds_line_expires", "budget_holds", ["line", "expires_at"])
    op.create_table(
        "budget_locks",
        sa.Column("line", sa.String(400), primary_key=True),
        sa.Column("takes", sa.BigInteger, nullable=False),
        sa.Column("spent_nanos", sa.BigInteger, nullable=True),
        sa.Column("forget_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_budget_locks_forget_at", "budget_locks", ["forget_at"])
    op.create_table(
        "budget_marks",
        sa.Column("line", sa.String(400), primary_key=True),
        sa.Column("threshold", sa.Float, primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_marks")
    op.drop_table("budget_locks")
    op.drop_table("budget_holds")

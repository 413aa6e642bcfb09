"""Crons: scheduled runs, stateless or on a thread.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crons",
        sa.Column("cron_id", sa.String(64), primary_key=True),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column(
            "thread_id",
            sa.String(64),
            sa.ForeignKey("threads.thread_id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("schedule", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("end_time", UTCDateTime, nullable=True),
        sa.Column("next_run_date", UTCDateTime, nullable=True),
        sa.Column("on_run_completed", sa.String(16), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_crons_assistant_id", "crons", ["assistant_id"])
    op.create_index("ix_crons_thread_id", "crons", ["thread_id"])
    # The scheduler's one query: due crons, polled every few seconds by every worker.
    op.create_index("ix_crons_next_run_date", "crons", ["next_run_date"])


def downgrade() -> None:
    op.drop_table("crons")

"""Alerts: their history, the evaluator's lease, run outcomes and quality scores.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("alert_key", sa.String(400), nullable=False),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("ends_at", UTCDateTime, nullable=True),
        sa.Column("notified_at", UTCDateTime, nullable=True),
        sa.Column("notifications", sa.Integer, nullable=False),
        sa.Column("deliveries", JSONType, nullable=False),
    )
    op.create_index("ix_alert_history_started", "alert_history", ["started_at"])
    op.create_index(
        "ux_alert_history_firing",
        "alert_history",
        ["alert_key"],
        unique=True,
        sqlite_where=sa.text("state = 'firing'"),
        postgresql_where=sa.text("state = 'firing'"),
    )
    op.create_table(
        "run_outcomes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_run_outcomes_window",
        "run_outcomes",
        ["ended_at", "status", "assistant_id", "seconds"],
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "quality_scores",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_quality_scores_created_at", "quality_scores", ["created_at"])


def downgrade() -> None:
    op.drop_table("quality_scores")
    op.drop_table("leases")
    op.drop_table("run_outcomes")
    op.drop_table("alert_history")

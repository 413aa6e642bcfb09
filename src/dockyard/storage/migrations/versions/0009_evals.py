"""Evaluation: experiments (dockyard eval) and their per-item results.

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0009"
# 0007 (alerts) and 0008 (prompts) are made on other branches; the merge re-chains this.
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_experiments",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("assistant", sa.String(255), nullable=False),
        sa.Column("dataset", sa.String(1000), nullable=False),
        sa.Column("dataset_hash", sa.String(64), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("variants", JSONType, nullable=False),
        sa.Column("scorers", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", JSONType, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_eval_experiments_created_at", "eval_experiments", ["created_at"])
    op.create_table(
        "eval_results",
        sa.Column(
            "experiment_id",
            sa.String(64),
            sa.ForeignKey("eval_experiments.experiment_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("variant", sa.String(64), primary_key=True),
        sa.Column("item_id", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("input", JSONType, nullable=False),
        sa.Column("expected", JSONType, nullable=True),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("parts", JSONType, nullable=False),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
    op.drop_table("eval_experiments")

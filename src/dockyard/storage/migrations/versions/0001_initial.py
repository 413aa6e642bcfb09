"""Assistants, their versions, threads and runs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("assistant_id", sa.String(64), primary_key=True),
        sa.Column("graph_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_assistants_graph_id", "assistants", ["graph_id"])
    op.create_table(
        "assistant_versions",
        sa.Column(
            "assistant_id",
            sa.String(64),
            sa.ForeignKey("assistants.assistant_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("graph_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "threads",
        sa.Column("thread_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("values", JSONType, nullable=True),
        sa.Column("interrupts", JSONType, nullable=False),
        sa.Column("graph_id", sa.String(255), nullable=True),
        sa.Column("ttl", JSONType, nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_threads_status", "threads", ["status"])
    op.create_index("ix_threads_expires_at", "threads", ["expires_at"])
    op.create_index("ix_threads_created_at", "threads", ["created_at"])
    op.create_index("ix_threads_updated_at", "threads", ["updated_at"])
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column(
            "thread_id",
            sa.String(64),
            sa.ForeignKey("threads.thread_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("multitask_strategy", sa.String(16), nullable=False),
        sa.Column("kwargs", JSONType, nullable=False),
        sa.Column("temporary", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", JSONType, nullable=True),
        sa.Column("cancel_reason", sa.String(32), nullable=True),
        sa.Column("not_before", UTCDateTime, nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_runs_thread_created", "runs", ["thread_id", "created_at"])
    op.create_index("ix_runs_status_created", "runs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("threads")
    op.drop_table("assistant_versions")
    op.drop_table("assistants")

"""Run leases (worker processes) and webhook delivery on runs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dockyard.storage.tables import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        # The process executing the run and until when its claim holds; a run
        # whose lease ran out (its worker died) is taken by another worker.
        batch.add_column(sa.Column("worker_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime, nullable=True))
        # interrupt|rollback asked for by another process; the owner stops the run.
        batch.add_column(sa.Column("cancel_requested", sa.String(16), nullable=True))
        # {"url": ..., "status": pending|delivered|failed, "attempts": n, ...}
        batch.add_column(sa.Column("webhook", JSONType, nullable=True))
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_lease", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("webhook")
        batch.drop_column("cancel_requested")
        batch.drop_column("lease_expires_at")
        batch.drop_column("worker_id")

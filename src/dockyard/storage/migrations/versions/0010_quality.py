"""Quality: the rollout variant a scored run was assigned (quality_scores.variant).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A rollout compares its variants' quality (variants.ROLLOUT_KEY); null: no rollout.
    with op.batch_alter_table("quality_scores") as batch:
        batch.add_column(sa.Column("variant", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quality_scores") as batch:
        batch.drop_column("variant")

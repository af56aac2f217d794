"""log_verification: the outcome of each 'barnplan log verify', for /metrics and status

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_verification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("checkpoints", sa.Integer(), nullable=False),
        sa.Column("witnesses", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
    )
    op.create_index("ix_log_verification_at", "log_verification", ["at"])


def downgrade() -> None:
    op.drop_index("ix_log_verification_at", table_name="log_verification")
    op.drop_table("log_verification")

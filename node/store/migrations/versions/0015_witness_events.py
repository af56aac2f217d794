"""witness_event: the peers' checkpoints this node refused to witness and the restore
declarations it accepted; log_restore: this node's own restore declarations (issue #19)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witness_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("origin", sa.String(length=253), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("problem", sa.String(length=32), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("seen_seq", sa.Integer(), nullable=True),
        sa.Column("signed", sa.Text(), nullable=True),
        sa.Column("superseded", sa.Text(), nullable=True),
    )
    op.create_index("ix_witness_event_origin", "witness_event", ["origin"])
    op.create_index("ix_witness_event_at", "witness_event", ["at"])
    op.create_table(
        "log_restore",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_restore")
    op.drop_index("ix_witness_event_at", table_name="witness_event")
    op.drop_index("ix_witness_event_origin", table_name="witness_event")
    op.drop_table("witness_event")

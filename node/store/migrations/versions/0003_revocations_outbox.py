"""revocations (with tombstones) and the outbox of notices to peers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def ts(name: str, nullable: bool = False, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "revocation",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("consent_id", sa.String(36), nullable=False, unique=True),
        sa.Column("plan_id", sa.String(36), nullable=False, index=True),
        ts("revoked_at"),
        sa.Column("revoked_by", sa.String(253), nullable=False),
        sa.Column("notice_id", sa.String(36), nullable=False),
        ts("recorded_at"),
    )
    op.create_table(
        "outbox",
        sa.Column("item_id", sa.String(36), primary_key=True),
        sa.Column("peer", sa.String(253), nullable=False, index=True),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        ts("created_at"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        ts("next_attempt_at", index=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        ts("delivered_at", nullable=True),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("revocation")

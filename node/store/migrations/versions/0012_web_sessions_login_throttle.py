"""web sessions kept in the store (so signing out ends one session everywhere) and login
throttling by user id and by client address, shared by every process and kept over restarts

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def ts(name: str, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, index=index)


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("app_user.user_id"),
            nullable=False,
            index=True,
        ),
        ts("created_at"),
        ts("expires_at", index=True),
    )
    op.create_table(
        "login_throttle",
        sa.Column("subject", sa.String(64), primary_key=True),
        ts("window_start", index=True),
        sa.Column("failures", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_table("web_session")

"""initial: own keys, peers, replay memory

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "own_key",
        sa.Column("key_id", sa.String(300), primary_key=True),
        sa.Column("public", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file", sa.String(500), nullable=False),
    )
    op.create_table(
        "peer",
        sa.Column("node_id", sa.String(253), primary_key=True),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("agency_name", sa.String(200), nullable=False),
        sa.Column("agency_kind", sa.String(40), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "seen_message",
        sa.Column("sender", sa.String(253), primary_key=True),
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("seen_message")
    op.drop_table("peer")
    op.drop_table("own_key")

"""catch-up cursors per peer; consents marked when they pass valid_until

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_state",
        sa.Column("node_id", sa.String(253), primary_key=True),
        sa.Column("revocation_cursor", sa.Integer(), nullable=False, server_default="0"),
    )
    with op.batch_alter_table("consent") as batch:
        batch.add_column(sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consent") as batch:
        batch.drop_column("expired_at")
    op.drop_table("peer_state")

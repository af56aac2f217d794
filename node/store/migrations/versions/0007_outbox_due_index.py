"""outbox: a partial index on the next attempt of undelivered items only

The outbox is checked every second for due items (``delivered_at IS NULL AND next_attempt_at <=
now``); with only an index on ``next_attempt_at`` that walked every notice ever delivered, a
cost that grew with the node's history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UNDELIVERED = sa.text("delivered_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_undelivered_due",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=UNDELIVERED,
        postgresql_where=UNDELIVERED,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_undelivered_due", table_name="outbox")

"""repair: add app_user.sessions_since where 0008 ran without it

Migration 0008 was edited after it landed (594a892 added only disabled_at; 4808ff1 added
sessions_since to the same script), so a store migrated to 0008 in between lacks the column
while its version table says 0008. This adds the column only where it is missing. Migrations
are append-only from here on (tests/node/test_migrations_append_only.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("app_user")}
    if "sessions_since" in columns:
        return
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("sessions_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # 0008 (as it stands now) owns the column; its downgrade drops it
    pass

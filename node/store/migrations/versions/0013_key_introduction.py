"""own_key: nullable introduction, the signed node document that announced the key (signed by
the key before it), which the node publishes while it still describes the node (SPEC.md §4.6)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place for every change; PostgreSQL alters it
    with op.batch_alter_table("own_key") as batch:
        batch.add_column(sa.Column("introduction", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("own_key") as batch:
        batch.drop_column("introduction")

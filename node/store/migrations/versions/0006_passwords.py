"""passwords for the web pages: a nullable argon2id hash on app_user

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place for every change; PostgreSQL alters it
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("password_hash")

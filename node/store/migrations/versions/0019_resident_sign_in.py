"""consent_person.identity_hash: the keyed hash of a person's personal identity number, so a
resident signing in with e-identification is matched to the plans they are on (issue #18);
the number itself is never stored

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_person") as batch:
        batch.add_column(sa.Column("identity_hash", sa.String(length=80), nullable=True))
        batch.create_index("ix_consent_person_identity_hash", ["identity_hash"])


def downgrade() -> None:
    with op.batch_alter_table("consent_person") as batch:
        batch.drop_index("ix_consent_person_identity_hash")
        batch.drop_column("identity_hash")

"""consent_person: the people whose consent a plan needs, by name, at the lead node only;
consent_replacement: consents replaced by a later statement of the plan's lead (issue #17)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_replacement",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("replaced_by", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("consent_id", "plan_id", name="uq_consent_replacement_consent_plan"),
    )
    op.create_index("ix_consent_replacement_plan_id", "consent_replacement", ["plan_id"])
    op.create_table(
        "consent_person",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("answer", sa.String(length=20), nullable=False),
        sa.Column("answered_on", sa.String(length=10), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=True),
        sa.Column("form_ref", sa.String(length=200), nullable=True),
        sa.Column("age", sa.Integer(), nullable=True),
        sa.Column("maturity", sa.Text(), nullable=True),
        sa.Column("view", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("plan_id", "ref", name="uq_consent_person_plan_ref"),
    )
    op.create_index("ix_consent_person_plan_id", "consent_person", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_consent_person_plan_id", table_name="consent_person")
    op.drop_table("consent_person")
    op.drop_index("ix_consent_replacement_plan_id", table_name="consent_replacement")
    op.drop_table("consent_replacement")

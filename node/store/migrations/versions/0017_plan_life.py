"""A plan's whole life (issue #17): its details at the lead (coordinator, next review), its
closing (plan.closed_at; plan_closure, the closures this node recorded or received, with the
seq peers page by in closures.since) and each peer's closure catch-up cursor.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("plan", sa.Column("coordinator_name", sa.String(200), nullable=True))
    op.add_column("plan", sa.Column("coordinator_contact", sa.String(200), nullable=True))
    op.add_column("plan", sa.Column("review_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("plan", sa.Column("review_place", sa.String(200), nullable=True))
    op.add_column("plan", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "plan_closure",
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.String(36), nullable=False, unique=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(253), nullable=False),
        sa.Column("notice_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column(
        "peer_state",
        sa.Column("closure_cursor", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("peer_state") as batch:
        batch.drop_column("closure_cursor")
    op.drop_table("plan_closure")
    with op.batch_alter_table("plan") as batch:
        for column in (
            "closed_at",
            "review_place",
            "review_at",
            "coordinator_contact",
            "coordinator_name",
        ):
            batch.drop_column(column)
